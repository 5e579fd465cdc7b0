"""Role package-cache on the scenario's hosts (testinfra over SSH): apt-cacher-ng runs on the cache host, and
another host's HTTP fetch of a Debian archive file through it is answered and lands in the cache's log."""

from pathlib import Path

import yaml

INVENTORY = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]
CACHE_HOST = next(iter(INVENTORY["children"]["package_cache"]["hosts"]))
CACHE = INVENTORY["children"]["package_cache"]["hosts"][CACHE_HOST]["ansible_host"]
CLIENT = next(iter(INVENTORY["hosts"]))
CLIENT_ADDRESS = INVENTORY["hosts"][CLIENT]["ansible_host"]
PORT = 3142   # the role's package_cache_port
RELEASE = "http://deb.debian.org/debian/dists/bookworm/Release"

testinfra_hosts = [f"ansible://{CACHE_HOST}"]


def test_apt_cacher_ng_runs_and_listens(host):
    assert host.package("apt-cacher-ng").is_installed
    service = host.service("apt-cacher-ng")
    assert service.is_running and service.is_enabled
    assert host.socket(f"tcp://0.0.0.0:{PORT}").is_listening or host.socket(f"tcp://:::{PORT}").is_listening


def test_another_host_fetches_through_the_cache(host, request):
    client = host.get_host(f"ansible://{CLIENT}", ansible_inventory=request.config.option.ansible_inventory)
    fetch = ("import urllib.request as u; "
             f"o = u.build_opener(u.ProxyHandler({{'http': 'http://{CACHE}:{PORT}'}})); "
             f"print(o.open('{RELEASE}', timeout=60).read(4096).decode())")
    release = client.check_output(f'python3 -c "{fetch}"')
    assert "Origin: Debian" in release and "Codename: bookworm" in release, release
    # Served by the cache host, from the client's address (its transfer log: time|O|bytes|client|path).
    log = host.check_output("cat /var/log/apt-cacher-ng/apt-cacher.log")
    assert any("|O|" in line and CLIENT_ADDRESS in line and line.endswith("dists/bookworm/Release")
               for line in log.splitlines()), log[-2000:]
