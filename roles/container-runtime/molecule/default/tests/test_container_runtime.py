"""Role container-runtime on the scenario's worker (testinfra over SSH): Podman's API socket, which the node
agent talks to, is enabled and answers the Docker-compatible and libpod APIs."""

testinfra_hosts = ["ansible://workers"]

SOCKET = "/run/podman/podman.sock"


def test_podman_socket_is_enabled_and_listening(host):
    unit = host.service("podman.socket")
    assert unit.is_enabled and unit.is_running
    assert host.socket(f"unix://{SOCKET}").is_listening


def test_the_api_answers_on_it(host):
    assert host.check_output(f"curl -sS --fail --unix-socket {SOCKET} http://d/_ping") == "OK"
    info = host.check_output(f"curl -sS --fail --unix-socket {SOCKET} http://d/v4.0.0/libpod/info")
    assert '"ociRuntime"' in info and '"runc"' in info, info[:2000]
