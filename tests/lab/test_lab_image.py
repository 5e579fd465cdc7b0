"""The lab host image: one build per recipe, and a root file system like a fresh minimal Debian VM."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from kfab.lab.image import ensure_image, host_recipe

pytestmark = pytest.mark.lab


def test_the_image_tag_follows_the_recipe():
    recipe = host_recipe()
    assert recipe.tag == host_recipe().tag
    changed_sources = dataclasses.replace(
        recipe, apt_files={**recipe.apt_files, "/etc/apt/sources.list.d/extra.sources": b"Types: deb\n"})
    assert changed_sources.tag != recipe.tag
    assert dataclasses.replace(recipe, mirror="http://example.invalid/debian").tag != recipe.tag


def test_the_image_is_built_once_and_ships_no_per_host_identity():
    image = ensure_image()
    assert image == host_recipe().image and ensure_image() == image
    probe = ("ls /etc/ssh | grep -c '^ssh_host_' || true; wc -c < /etc/machine-id; "
             "readlink /etc/systemd/system/systemd-networkd.service; "
             "command -v podman || echo no-podman; cat /etc/apt/sources.list.d/*.sources | grep -c URIs")
    out = subprocess.run(["podman", "run", "--rm", "--network", "none", image, "sh", "-c", probe],
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    host_keys, machine_id_bytes, networkd, podman, apt_uris = out
    assert host_keys == "0"            # generated per host at first boot
    assert machine_id_bytes == "0"     # each host gets its own from --machine-id
    assert networkd == "/dev/null"     # it would flush the address Podman gives eth0
    assert podman == "no-podman"       # the roles install it
    assert int(apt_uris) >= 1          # this machine's mirror, so hosts can apt-get install
