"""Ingress routing as the Ingress API specifies it: host precedence, path types, longest match, conflicts."""

from kfab.ingress.backends import addresses
from kfab.ingress.routes import Backend, build_routes, normalize_host, ours, path_matches


def ingress(name: str, rules: list, *, created: str = "2026-01-01T00:00:00Z", ns: str = "default", **spec) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "uid": name},
            "spec": {"rules": rules, **spec}}


def rule(host: str, *paths: tuple[str, str, str]) -> dict:
    return {"host": host, "http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"number": 80}}}}
        for p, t, svc in paths]}}


def backend_of(table, host, path):
    _, backend = table.match(host, path)
    return backend.service if backend else None


def test_prefix_matches_whole_path_elements_only():
    assert path_matches("Prefix", "/foo", "/foo")
    assert path_matches("Prefix", "/foo", "/foo/")
    assert path_matches("Prefix", "/foo/", "/foo")
    assert path_matches("Prefix", "/foo", "/foo/bar")
    assert not path_matches("Prefix", "/foo", "/foobar")
    assert path_matches("Prefix", "/", "/anything/at/all")
    assert path_matches("Exact", "/foo", "/foo") and not path_matches("Exact", "/foo", "/foo/")


def test_longest_path_wins_and_exact_beats_prefix_at_equal_length():
    table = build_routes([ingress("a", [rule("web.example.com", ("/", "Prefix", "root"),
                                              ("/api", "Prefix", "api"), ("/api", "Exact", "api-exact"),
                                              ("/api/v2", "Prefix", "v2"))])])
    assert backend_of(table, "web.example.com", "/") == "root"
    assert backend_of(table, "web.example.com", "/api") == "api-exact"
    assert backend_of(table, "web.example.com", "/api/") == "api"
    assert backend_of(table, "web.example.com", "/api/v2/users") == "v2"
    assert backend_of(table, "web.example.com", "/apis") == "root"


def test_exact_host_beats_wildcard_which_covers_one_label():
    table = build_routes([ingress("a", [rule("*.example.com", ("/", "Prefix", "wild")),
                                        rule("www.example.com", ("/", "Prefix", "www"))])])
    assert backend_of(table, "www.example.com", "/") == "www"
    assert backend_of(table, "shop.example.com:8080", "/") == "wild"
    assert backend_of(table, "a.b.example.com", "/") is None
    assert backend_of(table, "example.com", "/") is None


def test_unknown_host_gets_the_default_backend_else_nothing():
    table = build_routes([ingress("a", [rule("web.example.com", ("/", "Prefix", "web"))])])
    assert table.match("other.example.com", "/") == (None, None)
    with_default = build_routes([ingress("a", [rule("web.example.com", ("/", "Prefix", "web"))],
                                         defaultBackend={"service": {"name": "fallback", "port": {"name": "http"}}})])
    assert with_default.match("other.example.com", "/")[1] == Backend("default", "fallback", None, "http")


def test_rules_without_a_host_serve_every_other_host():
    table = build_routes([ingress("a", [rule("", ("/", "Prefix", "any")),
                                        rule("web.example.com", ("/x", "Exact", "x"))])])
    assert backend_of(table, "203.0.113.9", "/") == "any"
    assert backend_of(table, "web.example.com", "/x") == "x"
    assert backend_of(table, "web.example.com", "/") is None  # a named host does not fall back to host-less rules


def test_same_host_and_path_in_two_ingresses_the_oldest_keeps_it():
    old = ingress("old", [rule("web.example.com", ("/", "Prefix", "old"))], created="2026-01-01T00:00:00Z")
    new = ingress("new", [rule("web.example.com", ("/", "Prefix", "new"), ("/new", "Prefix", "new-only"))],
                  created="2026-02-01T00:00:00Z")
    table = build_routes([new, old])
    assert backend_of(table, "web.example.com", "/") == "old"
    assert backend_of(table, "web.example.com", "/new") == "new-only"  # the rest of the newer one still serves
    assert [c.ingress for c in table.conflicts] == ["default/new"]
    assert "already defined in ingress default/old" in table.conflicts[0].message


def test_tls_hosts_map_to_their_secret_in_the_ingress_namespace():
    table = build_routes([ingress("a", [], ns="shop", tls=[{"hosts": ["shop.example.com", "*.apps.example.com"],
                                                           "secretName": "shop-tls"}])])
    assert table.tls_secret("shop.example.com") == ("shop", "shop-tls")
    assert table.tls_secret("x.apps.example.com") == ("shop", "shop-tls")
    assert table.tls_secret("other.example.com") is None


def test_class_selection():
    assert ours({"spec": {"ingressClassName": "kfab"}}, {"kfab"})
    assert not ours({"spec": {"ingressClassName": "nginx"}}, {"kfab", ""})
    assert ours({"metadata": {"annotations": {"kubernetes.io/ingress.class": "kfab"}}, "spec": {}}, {"kfab"})
    assert ours({"spec": {}}, {"kfab", ""}) and not ours({"spec": {}}, {"kfab"})


def test_normalize_host():
    assert normalize_host("Web.Example.COM:443") == "web.example.com"
    assert normalize_host("web.example.com.") == "web.example.com"


def test_backend_addresses_follow_the_service_port_name_to_ready_slice_endpoints():
    service = {"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                  {"name": "metrics", "port": 9090, "protocol": "TCP"}]}}
    slices = [{"metadata": {"labels": {"kubernetes.io/service-name": "web"}},
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100}],
               "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.2.7"]},
                             {"addresses": ["10.244.2.8"], "conditions": {"ready": False}},
                             {"addresses": ["10.244.2.9"], "conditions": {"ready": True, "terminating": True}}]}]
    by_number = addresses(Backend("default", "web", 80), service, slices)
    assert by_number == [("10.244.1.5", 8080), ("10.244.2.7", 8080)]
    assert addresses(Backend("default", "web", None, "metrics"), service, slices)[0] == ("10.244.1.5", 9100)
    assert addresses(Backend("default", "web", 81), service, slices) == []
    assert addresses(Backend("default", "web", 80), None, slices) == []
