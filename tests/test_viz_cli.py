"""``python -m p2plab ladder CAPTURE.pcap -o ladder.html``."""

from __future__ import annotations

import subprocess
import sys

from p2plab.__main__ import main


def test_ladder_cli_renders_pcap(tmp_path, capsys):
    from p2plab.punch import run_punch

    pcap = run_punch().trace.where(node="nat-b").to_pcap(tmp_path / "nat-b.pcap")
    out = tmp_path / "ladder.html"
    assert main(["ladder", str(pcap), "-o", str(out)]) == 0
    text = out.read_text()
    assert "plotly" in text.lower() and "198.51.100.20" in text
    printed = capsys.readouterr().out
    assert "Ladder diagram of" in printed and f"wrote {out}" in printed


def test_ladder_cli_rejects_non_pcap(tmp_path):
    junk = tmp_path / "notes.pcap"
    junk.write_text("hello, not a capture")
    proc = subprocess.run([sys.executable, "-m", "p2plab", "ladder", str(junk), "-o", str(tmp_path / "x.html")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "is not a pcap or pcapng file" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.html").exists()
