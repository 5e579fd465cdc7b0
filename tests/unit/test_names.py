"""Name, label and annotation rules say exactly what kube-apiserver says."""

import pytest

from kfab.objects import names

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
               "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
               "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                 "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


@pytest.mark.parametrize("value", ["example.com", "a", "nginx-deployment", "web-0.nginx", "1abc"])
def test_valid_subdomains(value):
    assert names.is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", ["Bad_Name", "-a", "a-", "a..b", "UPPER", "", "a_b"])
def test_invalid_subdomain_message_is_apimachinerys(value):
    assert names.is_dns1123_subdomain(value) == [SUBDOMAIN_MSG]


def test_subdomain_too_long_reports_length_and_format():
    assert names.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert names.is_dns1123_subdomain("-" * 254) == ["must be no more than 253 characters", SUBDOMAIN_MSG]


def test_dns1123_label_rejects_dots_with_its_own_message():
    assert names.is_dns1123_label("my-ns") == []
    assert names.is_dns1123_label("my.ns") == ["must not contain dots"]
    assert names.is_dns1123_label("My_NS") == [LABEL_MSG]
    assert names.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_service_names_must_start_with_a_letter():
    assert names.is_dns1035_label("my-service") == []
    assert names.is_dns1035_label("1service") == [DNS1035_MSG]


def test_label_keys_and_values():
    assert names.is_qualified_name("app.kubernetes.io/name") == []
    assert names.is_qualified_name("app") == []
    assert names.is_qualified_name("-app") == [NAME_PART_MSG]
    assert names.is_qualified_name("Example.com/app") == ["prefix part " + SUBDOMAIN_MSG]
    assert names.is_qualified_name("/app") == ["prefix part must be non-empty"]
    assert names.is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert names.is_qualified_name("a" * 64) == ["name part must be no more than 63 characters"]
    assert names.is_valid_label_value("") == []
    assert names.is_valid_label_value("v1.2_x") == []
    assert names.is_valid_label_value("bad value") == [LABEL_VALUE_MSG]


def test_generate_name_prefix_may_end_with_a_dash():
    assert names.name_is_dns_subdomain("nginx-", prefix=True) == []
    assert names.name_is_dns_subdomain("nginx-", prefix=False) == [SUBDOMAIN_MSG]


def test_port_names_follow_iana_service_names():
    assert names.is_valid_port_name("http") == []
    assert names.is_valid_port_name("web-1") == []
    assert names.is_valid_port_name("80") == ["must contain at least one letter (a-z)"]
    assert names.is_valid_port_name("a--b") == ["must not contain consecutive hyphens"]
    assert names.is_valid_port_name("HTTP") == [
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "must contain at least one letter (a-z)"]
    assert names.is_valid_port_name("averyveryverylongname") == ["must be no more than 15 characters"]


def test_config_keys_and_rbac_names():
    assert names.is_config_map_key("game.properties") == []
    assert names.is_config_map_key("..data")[-1] == "must not start with '..'"
    assert names.is_config_map_key("a/b")[0].startswith("a valid config key must consist of alphanumeric")
    assert names.name_is_path_segment("system:controller:x") == []
    assert names.name_is_path_segment("a/b") == ["may not contain '/'"]
    assert names.name_is_path_segment("..") == ["may not be '..'"]
