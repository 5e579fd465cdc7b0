"""Role nfs-server on the scenario's hosts (testinfra over SSH): nfs-ganesha (a container host) and rpcbind run
as units and answer on their ports, the export directories sit on the tmpfs the role mounts (and mounts again at
boot), and a worker reads a file written on the server through both exports, by NFSv3 and NFSv4 (libnfs's
userspace client), while a host in no client group is refused."""

from pathlib import Path

import pytest
import yaml

INVENTORY = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]
SERVER_HOST = next(iter(INVENTORY["children"]["nfs_server"]["hosts"]))
SERVER = INVENTORY["children"]["nfs_server"]["hosts"][SERVER_HOST]["ansible_host"]
WORKER = next(iter(INVENTORY["children"]["workers"]["hosts"]))
OUTSIDER = next(iter(INVENTORY["hosts"]))
BASE = "/srv/kfab-nfs"   # the role's nfs_server_base_dir
EXPORTS = (f"{BASE}/static", f"{BASE}/dynamic")

testinfra_hosts = [f"ansible://{SERVER_HOST}"]


@pytest.fixture
def other(host, request):
    return lambda name: host.get_host(f"ansible://{name}", ansible_inventory=request.config.option.ansible_inventory)


def test_ganesha_and_rpcbind_run_and_listen(host):
    assert host.package("nfs-ganesha").is_installed and host.package("nfs-ganesha-vfs").is_installed
    for unit in ("rpcbind", "nfs-ganesha"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit
    listening = host.check_output("ss -Htln")
    for port in (2049, 111):   # NFS, and the portmapper NFSv3 clients ask for the mount service
        assert any(line.split()[3].endswith(f":{port}") for line in listening.splitlines()), (port, listening)


def test_exports_live_on_a_tmpfs_mounted_at_boot(host):
    assert host.mount_point(BASE).exists and host.mount_point(BASE).filesystem == "tmpfs"
    fstab = host.file("/etc/fstab").content_string.splitlines()
    assert any(line.split()[:3] == ["tmpfs", BASE, "tmpfs"] for line in fstab), fstab
    for directory in EXPORTS:
        d = host.file(directory)
        assert d.is_directory and d.mode == 0o755 and d.user == "root", directory
    config = host.file("/etc/ganesha/ganesha.conf").content_string
    for directory in EXPORTS:
        assert f'Path = "{directory}";' in config and f'Pseudo = "{directory}";' in config, config


@pytest.mark.parametrize("export", EXPORTS)
def test_a_worker_reads_both_exports_by_nfsv3_and_nfsv4(host, other, export):
    name = f"{export}/molecule-{export.rsplit('/', 1)[1]}.txt"
    host.check_output(f"echo written-on-the-server > {name}")
    try:
        worker = other(WORKER)
        assert name.rsplit("/", 1)[1] in worker.check_output(f"nfs-ls nfs://{SERVER}{export}")
        for version in (3, 4):   # NFSv4 names the Pseudo path, which the role sets equal to the real one
            read = worker.run(f"nfs-cat 'nfs://{SERVER}{name}?version={version}'")
            assert read.rc == 0 and read.stdout == "written-on-the-server\n", (version, read.stdout, read.stderr)
    finally:
        host.run(f"rm -f {name}")


def test_a_host_outside_the_clients_is_refused(host, other):
    host.check_output(f"echo secret > {BASE}/static/molecule-outsider.txt")
    try:
        refused = other(OUTSIDER).run(f"nfs-ls nfs://{SERVER}{BASE}/static")
        assert refused.rc != 0 and "molecule-outsider.txt" not in refused.stdout, (refused.stdout, refused.stderr)
    finally:
        host.run(f"rm -f {BASE}/static/molecule-outsider.txt")
