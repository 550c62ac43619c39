"""Power readers: PMIC text parsing, RAPL counters in a sysfs-like folder, fixed watts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.appliance.power import (
    FixedWatts,
    Pi5Pmic,
    PowerMeter,
    Rapl,
    detect_source,
    parse_pmic_adc,
    pi5_wall_watts,
    rapl_delta_uj,
)

# Output in the format of `vcgencmd pmic_read_adc` on a Raspberry Pi 5 (values made up).
PMIC_TEXT = """\
 3V7_WL_SW_A current(0)=0.10000000A
   3V3_SYS_A current(1)=0.20000000A
  VDD_CORE_A current(7)=2.00000000A
     HDMI_A current(22)=0.01000000A
 3V7_WL_SW_V volt(8)=3.70000000V
   3V3_SYS_V volt(9)=3.30000000V
  VDD_CORE_V volt(15)=0.80000000V
     HDMI_V volt(23)=5.00000000V
    EXT5V_V volt(24)=5.10000000V
     BATT_V volt(25)=0.00000000V
"""
RAIL_SUM = 0.1 * 3.7 + 0.2 * 3.3 + 2.0 * 0.8 + 0.01 * 5.0


def test_pmic_rails_are_paired_and_summed() -> None:
    assert parse_pmic_adc(PMIC_TEXT) == pytest.approx(RAIL_SUM)


def test_pmic_garbage_lines_are_ignored() -> None:
    text = PMIC_TEXT + "  BAD_A volt(3)=1.0A\n  VDD_CORE_X current(7)=9A\nnoise\n  ODD_A current(30)=1.2.3A\n"
    assert parse_pmic_adc(text) == pytest.approx(RAIL_SUM)


def test_pmic_without_rails_is_unknown() -> None:
    assert parse_pmic_adc('error=1 error_msg="Command not registered"\n') is None
    assert parse_pmic_adc("") is None
    assert parse_pmic_adc("    EXT5V_V volt(24)=5.10000000V\n") is None


def test_pi5_correction() -> None:
    assert pi5_wall_watts(RAIL_SUM) == pytest.approx(1.1451 * RAIL_SUM + 0.5879)


def _script(tmp_path: Path, body: str) -> str:
    p = tmp_path / "vcgencmd"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(p)


def test_pi5_reader_runs_the_command(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text(PMIC_TEXT)
    cmd = _script(tmp_path, f'[ "$1" = pmic_read_adc ] && cat "{tmp_path / "out.txt"}"\n')
    pmic = Pi5Pmic(cmd)
    assert pmic.read() == pytest.approx(pi5_wall_watts(RAIL_SUM))
    src = detect_source(vcgencmd=cmd, powercap=tmp_path / "none")
    assert isinstance(src, Pi5Pmic)
    with PowerMeter(src) as pm:
        pass
    assert pm.result.source == "pi5-pmic"
    assert pm.result.watts == pytest.approx(pi5_wall_watts(RAIL_SUM))


def test_pi5_reader_failing_command_is_unknown(tmp_path: Path) -> None:
    cmd = _script(tmp_path, 'echo "error=1 error_msg=\\"Command not registered\\""; exit 1\n')
    assert Pi5Pmic(cmd).read() is None
    assert Pi5Pmic(str(tmp_path / "missing")).read() is None


def test_rapl_delta_handles_one_wrap() -> None:
    assert rapl_delta_uj(100, 250, 1000) == 150
    assert rapl_delta_uj(900, 50, 1000) == 150
    assert rapl_delta_uj(7, 7, 1000) == 0


def _rapl_tree(root: Path, energy: int, max_range: int) -> Path:
    pkg = root / "intel-rapl:0"
    pkg.mkdir(parents=True)
    (pkg / "energy_uj").write_text(f"{energy}\n")
    (pkg / "max_energy_range_uj").write_text(f"{max_range}\n")
    core = root / "intel-rapl:0:0"  # a sub-zone: counted inside the package, must be skipped
    core.mkdir()
    (core / "energy_uj").write_text("5\n")
    (core / "max_energy_range_uj").write_text(f"{max_range}\n")
    return pkg


def test_rapl_accumulates_across_a_wrap(tmp_path: Path) -> None:
    pkg = _rapl_tree(tmp_path, energy=999_000, max_range=1_000_000)
    rapl = Rapl(tmp_path)
    assert rapl.domains == [pkg] and rapl.readable()
    rapl.start()
    (pkg / "energy_uj").write_text("500000\n")  # wrapped: 1,000 + 500,000 µJ
    rapl.sample()
    (pkg / "energy_uj").write_text("700000\n")
    watts = rapl.finish()
    assert rapl._energy_uj == 701_000
    assert watts is not None and watts > 0
    assert isinstance(detect_source(vcgencmd="no-such-vcgencmd", powercap=tmp_path), Rapl)


def test_rapl_unreadable_counter_is_unknown(tmp_path: Path) -> None:
    pkg = _rapl_tree(tmp_path, energy=10, max_range=1000)
    rapl = Rapl(tmp_path)
    rapl.start()
    (pkg / "energy_uj").write_text("garbage\n")
    assert rapl.finish() is None
    if os.geteuid() != 0:  # root reads a 0o000 file anyway
        (pkg / "energy_uj").chmod(0)
        assert not Rapl(tmp_path).readable()


def test_nothing_readable_is_unknown_never_invented(tmp_path: Path) -> None:
    assert detect_source(vcgencmd="no-such-vcgencmd", powercap=tmp_path / "absent") is None
    with PowerMeter(None) as pm:
        pass
    assert pm.result.watts is None and pm.result.source == "unknown"


def test_meter_figure_wins() -> None:
    src = detect_source(7.5, vcgencmd="no-such-vcgencmd")
    assert isinstance(src, FixedWatts)
    with PowerMeter(src) as pm:
        pass
    assert pm.result.watts == 7.5 and pm.result.source == "meter"
