"""The end of ``ferry demo``: what landed in the local target, the wall time and the rate."""

import io
from pathlib import Path

from rich.console import Console

from ferry_cli.commands.demo_migrate import report_result

MiB = 2**20


def test_the_report_lists_each_vms_images_and_manifests_and_the_rate(tmp_path: Path) -> None:
    directory = tmp_path / "target" / "default" / "app"
    directory.mkdir(parents=True)
    with (directory / "disk-0.raw").open("wb") as image:
        image.truncate(1024 * MiB)
        image.write(b"\x01" * MiB)
    for name in ("README.md", "virtualmachine.yaml", "volumes.yaml"):
        (directory / name).write_text("x")
    disks = [{"key": 1, "file_name": "[ds] app/app.vmdk", "bytes_total": 1024 * MiB, "bytes_done": 1024 * MiB,
              "completed": True, "bytes_read": MiB, "bytes_to_read": MiB}]  # fmt: skip
    view = {"vms": [
        {"vm_name": "app", "phase": "Completed", "location": str(directory), "disks": disks},
        {"vm_name": "gone", "phase": "Failed", "location": "", "disks": disks},
    ]}  # fmt: skip
    out = io.StringIO()

    report_result(view, 10.0, tmp_path / "target", Console(file=out, width=200, color_system=None))

    lines = [" ".join(line.replace("│", " ").split()) for line in out.getvalue().splitlines()]
    assert f"in the local target {tmp_path / 'target'}" in lines
    assert "app default/app disk-0.raw 1.0 GiB, 1.0 MiB README.md virtualmachine.yaml volumes.yaml" in lines
    assert not any("gone" in line for line in lines)
    assert lines[-1] == (
        "wall time 10.0s for 1.0 GiB of disks: 1.0 MiB read at 102.4 KiB/s, the rest unallocated or zero "
        "(1.0 MiB of data on the target)"
    ), "the rate is of the bytes read, not of the holes"
