"""kfab cache: which mirror apt-cacher-ng fetches from, its configuration, and reading its transfer log."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfab.cache.acng import CacheConfigError, config_text, read_transfers, this_machines_mirror


def test_mirror_from_deb822_sources_skips_the_security_archive(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://ftp.de.debian.org/debian/\nSuites: bookworm\n")
    assert this_machines_mirror((tmp_path / "sources.list", d)) == "http://ftp.de.debian.org/debian"


def test_mirror_from_one_line_sources_with_options(tmp_path):
    f = tmp_path / "sources.list"
    f.write_text("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n")
    assert this_machines_mirror((f, tmp_path / "none")) == "http://mirror.example/debian"


def test_no_sources_means_deb_debian_org(tmp_path):
    assert this_machines_mirror((tmp_path / "a", tmp_path / "b")) == "http://deb.debian.org/debian"


def test_config_remaps_debian_mirrors_to_the_given_one():
    text = config_text(Path("/s"), 3142, "10.78.0.1", "http://deb.debian.org/debian")
    assert "Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/\n" in text
    assert "Port: 3142\n" in text and "BindAddress: 10.78.0.1\n" in text and "CacheDir: /s/cache\n" in text
    assert "ftp.debian.org" not in text


@pytest.mark.parametrize("mirror", ["ftp://deb.debian.org/debian", "deb.debian.org/debian", "http://"])
def test_config_refuses_a_mirror_that_is_not_an_http_url(mirror):
    with pytest.raises(CacheConfigError, match="expected an http:// Debian mirror URL"):
        config_text(Path("/s"), 3142, "0.0.0.0", mirror)


def test_transfers_count_a_second_delivery_as_a_hit(tmp_path):
    log = tmp_path / "apt-cacher.log"
    log.write_text("1|I|10|10.0.0.2|debrep/pool/h/hello.deb\n1|O|10|10.0.0.2|debrep/pool/h/hello.deb\n"
                   "2|O|10|10.0.0.3|debrep/pool/h/hello.deb\n3|E|0|10.0.0.3|debrep/x [HTTP error]\ngarbage\n")
    transfers = read_transfers(log)
    assert transfers.fetched == {"debrep/pool/h/hello.deb": 1}
    assert transfers.served == {"debrep/pool/h/hello.deb": ["10.0.0.2", "10.0.0.3"]}
    assert transfers.hits == 1
    assert read_transfers(tmp_path / "missing.log").hits == 0
