"""The boot check's reading of the guest's ``FERRY-BOOT-OK`` console line."""

from ferry_testpeers.guests import BootMarker, parse_marker


def test_the_marker_line_is_parsed_among_console_noise() -> None:
    console = (
        "[   48.76] e1000e 0000:00:03.0 ens192: NIC Link is Up\n"
        "FERRY-BOOT-OK host=ferry-bios-guest root=/dev/sda1 ips=ens192:10.0.2.50/24,ens224:10.1.0.5/16\n"
        "[  OK  ] Reached target multi-user.target\n"
    )

    assert parse_marker(console) == BootMarker(
        host="ferry-bios-guest", root="/dev/sda1", ips=(("ens192", "10.0.2.50/24"), ("ens224", "10.1.0.5/16"))
    )


def test_a_guest_without_an_address_says_none() -> None:
    assert parse_marker("FERRY-BOOT-OK host=g root=/dev/vda1 ips=none\n") == BootMarker(
        host="g", root="/dev/vda1", ips=()
    )


def test_a_console_without_the_marker_has_none() -> None:
    assert parse_marker("ALERT!  /dev/sda1 does not exist.  Dropping to a shell!\n") is None
