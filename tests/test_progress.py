import io
import subprocess
import sys
import textwrap

import pytest

from ok_ml_assets.progress import Progress


def test_a_stage_says_when_it_starts_and_how_it_ended():
    out = io.StringIO()
    progress = Progress(out)
    with progress.stage("train"):
        pass
    with pytest.raises(RuntimeError), progress.stage("publish"):
        raise RuntimeError("broker down")
    lines = out.getvalue().splitlines()
    assert lines[0] == "▸ train ..." and lines[1].startswith("✓ train ") and lines[1].endswith(" s")
    assert lines[2] == "▸ publish ..." and lines[3].startswith("✗ publish failed after ")


def test_a_bar_off_a_terminal_prints_one_line_with_count_and_time():
    out = io.StringIO()
    with Progress(out).bar("dataset partitions", 3) as bar:
        for _ in range(3):
            bar.advance()
    assert out.getvalue().startswith("  dataset partitions: 3/3 in ") and out.getvalue().count("\n") == 1


def test_a_bar_on_a_terminal_redraws_in_place():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with Progress(out).bar("versions") as bar:
        bar.advance()
        bar.advance()
    assert "\r  versions 2 ..." in out.getvalue() and out.getvalue().endswith(" s\n")


def test_output_to_log_keeps_library_and_c_level_output_out_of_the_terminal(tmp_path):
    log = tmp_path / "logs" / "ok-ml.log"
    script = textwrap.dedent(f"""
        import logging, os, sys, warnings
        from pathlib import Path
        from ok_ml_assets.progress import output_to_log
        with output_to_log(Path({str(log)!r})) as terminal:
            print("progress line", file=terminal)
            print("Initialized DVC repository.")
            os.write(2, b"%7|librdkafka|retry\\n")
            logging.getLogger("mlflow").warning("Successfully registered model")
            warnings.warn("an experimental API")
        print("after the run")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "progress line\nafter the run\n" and done.stderr == ""
    kept = log.read_text()
    for text in ("Initialized DVC repository.", "librdkafka|retry", "Successfully registered model", "an experimental API"):
        assert text in kept
