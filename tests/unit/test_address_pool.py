"""loadbalancer_pool as the inventory writes it: ranges, CIDRs, lists; clear errors for what is not a pool."""

import pytest

from kfab.objects.address_pool import PoolError, parse_pool


def test_range_includes_both_ends():
    pool = parse_pool("192.168.1.240-192.168.1.242")
    assert [str(a) for a in pool.addresses] == ["192.168.1.240", "192.168.1.241", "192.168.1.242"]
    assert "192.168.1.241" in pool and "192.168.1.243" not in pool and "nonsense" not in pool


def test_cidr_gives_its_host_addresses_and_lists_combine():
    pool = parse_pool("10.80.0.248/30, 10.80.0.10-10.80.0.10")
    assert [str(a) for a in pool.addresses] == ["10.80.0.249", "10.80.0.250", "10.80.0.10"]
    assert pool.first_free({"10.80.0.249"}) == "10.80.0.250"
    assert pool.first_free({"10.80.0.249", "10.80.0.250", "10.80.0.10"}) is None


@pytest.mark.parametrize("text, message", [
    ("192.168.1.250-192.168.1.240", "ends before it starts"),
    ("192.168.1.0/33", "want a range"),
    ("10.0.0.0/8", "more than 65536"),
    ("", "holds no address"),
])
def test_bad_pools_are_named_in_the_error(text, message):
    with pytest.raises(PoolError, match=message):
        parse_pool(text)
