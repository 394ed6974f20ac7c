"""DNS-1123 names, checked in one place for the planner and the kubevirt-writer (pure)."""

import pytest

from ferry_shared.dns1123 import is_dns1123_label, is_dns1123_subdomain, to_dns1123_label

REFUSED = [
    "web-1\n",  # re.match with "$" accepted it
    "web-1\r\n",
    "\nweb-1",
    "web 1",
    " web-1",
    "web-*",
    "*",
    "web\x00-1",
    "Web-1",
    "web_1",
    "-web",
    "web-",
    "",
]


@pytest.mark.parametrize("name", REFUSED)
def test_a_name_that_is_no_label_is_refused(name: str) -> None:
    assert not is_dns1123_label(name)


def test_a_label_longer_than_63_characters_is_refused() -> None:
    assert not is_dns1123_label("a" * 64)


@pytest.mark.parametrize("name", [*REFUSED, "a.b\n", "a..b", ".a", "a.", "a" * 254])
def test_a_name_that_is_no_subdomain_is_refused(name: str) -> None:
    assert not is_dns1123_subdomain(name)


@pytest.mark.parametrize("name", ["a", "0", "web-1", "a--b", "a" * 63])
def test_labels_are_accepted(name: str) -> None:
    assert is_dns1123_label(name)
    assert is_dns1123_subdomain(name)


def test_subdomains_are_labels_joined_by_dots_up_to_253_characters() -> None:
    """As Kubernetes checks them: the length of the whole, not of each part."""
    assert is_dns1123_subdomain("web-1.apps.example")
    assert not is_dns1123_label("web-1.apps.example")
    longest = ".".join(["a" * 100, "b" * 100, "c" * 51])
    assert len(longest) == 253 and is_dns1123_subdomain(longest)
    assert not is_dns1123_subdomain(longest + "a")


@pytest.mark.parametrize("name", ["Finance DB (prod)", "web-1\n", "web\x00*", "  ", "Ä" * 80, "a" * 64])
def test_any_name_is_turned_into_a_label_that_names_it_alone(name: str) -> None:
    label = to_dns1123_label(name)
    assert is_dns1123_label(label)
    assert label == to_dns1123_label(name)
    assert label != to_dns1123_label(name + "x")


def test_a_label_is_kept_as_it_is() -> None:
    assert to_dns1123_label("web-1") == "web-1"
