"""Bad input a user can give: one line naming the option, exit status 2, nothing trained.

Each case is refused before any cell trains (so nothing in the output folder is
touched), with the one-line error the CLI prints for an AebenchError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BASE = ["run", "--models", "ae-mlp", "--datasets", "digits", "--profile", "smoke"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "18446744073709551616"], "--seeds must be at most 4294967295"),
        # only 32 bits reach the generators: 2**32 would silently repeat seed 0
        (["--seeds", "4294967296"], "--seeds must be at most 4294967295"),
        (["--seeds", "4294967295", "--n-seeds", "2"], "--n-seeds must be at most 1"),
        (["--seeds", "-1"], "--seeds must be >= 0"),
        (["--fid-samples", "1"], "--fid-samples 1 is too few for FID"),
        (["--fid-samples", "500", "--no-fid"], "--no-fid and --fid-samples contradict"),
        (["--suite", "{suite}"], "--limit must be at most 2147483647"),
        (["--out", ""], "--out is empty"),
        # a grid too large to plan: it used to end in "internal error: MemoryError"
        (["--n-seeds", "1000000000"], "the grid has 1000000000 cells"),
    ],
    ids=[
        "seed-2^64",
        "seed-2^32",
        "n-seeds-past-2^32",
        "seed-negative",
        "fid-1",
        "no-fid-and-fid-samples",
        "suite-limit-1e20",
        "out-empty",
        "n-seeds-1e9",
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    suite = tmp_path / "suite.toml"
    suite.write_text("limit = 1e20\n")
    out = tmp_path / "out"
    args = [a.replace("{suite}", str(suite)) for a in args]
    if "--out" not in args:
        args += ["--out", str(out)]
    code, stdout, err = cli(*BASE, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aebench: error: "), err
    assert message in lines[0]
    assert "Traceback" not in err + stdout
    assert not any(Path(out / "runs").glob("*")), "nothing may train"


def _images(folder: Path, n: int = 12, side: int = 8) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )
    return folder


@pytest.mark.parametrize(
    ("size", "message"),
    [
        # SSIM needs 3x3: size=2 used to train, then fail every run on SSIM
        ("2", "folder option size='2': images must be at least 3x3"),
        ("3x2", "folder option size='3x2': images must be at least 3x3"),
        # 559 GiB: used to end in "internal error: MemoryError"
        ("100000", "need about"),
    ],
)
def test_folder_sizes_that_cannot_work_are_refused_up_front(cli, tmp_path, size, message):
    folder = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    code, _, err = cli(
        "run", "--models", "ae-mlp", "--datasets", f"folder:{folder}", "--no-fid",
        "--dataset-options", f"size={size}", "--profile", "smoke", "--out", str(out),
    )  # fmt: skip
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aebench: error: ") and message in lines[0], err
    if size == "100000":
        assert "100000x100000x1" in lines[0] and "size=" in lines[0]
    assert not any(Path(out / "runs").glob("*"))


def test_folder_images_smaller_than_3x3_are_named(cli, tmp_path):
    folder = _images(tmp_path / "tiny", side=2)
    code, _, err = cli(
        "run", "--models", "ae-mlp", "--datasets", f"folder:{folder}", "--no-fid",
        "--profile", "smoke", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2 and "is 2x2 pixels; images must be at least 3x3" in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "100000"], "--n must be 1 to 4096"),
        (["--n", "0"], "--n must be 1 to 4096"),
        (["--seed", "-1"], "--seed must be 0 to 4294967295"),
        (["--seed", "4294967296"], "--seed must be 0 to 4294967295"),
    ],
)
def test_generate_refuses_counts_and_seeds_out_of_range(cli, finished, tmp_path, args, message):
    run_dir = next((finished / "runs").iterdir())
    target = tmp_path / "g.png"
    code, _, err = cli("generate", str(run_dir), *args, "--out", str(target))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not target.exists()


def test_a_run_whose_config_holds_a_huge_seed_is_named_and_skipped(finished, tmp_path):
    """One run directory with a seed no generator takes (2^64) used to end every later
    `report` and `run` into that folder in "internal error: OverflowError" (writing the
    results table)."""
    import shutil

    from aebench import results
    from aebench.store import RunStore

    out = tmp_path / "out"
    shutil.copytree(finished, out)
    bad, good = sorted((out / "runs").iterdir())
    config = bad / "config.json"
    config.write_text(config.read_text().replace('"seed": 0', '"seed": 18446744073709551616'))
    record = RunStore(out).read(bad.name)
    assert record.corrupt == (
        "config.json has an invalid seed 18446744073709551616 (expected 0 to 4294967295)"
    )
    frame = results.write(out)
    assert list(frame["run_id"]) == [good.name]
    assert (out / "results.parquet").exists()


def test_ctrl_c_while_the_cli_imports_is_one_line_and_130(monkeypatch, capsys):
    """The `aebench` entry point catches Ctrl-C during aebench.cli's own imports (typer
    and rich take the first half second): it used to print a KeyboardInterrupt traceback
    and die by the signal."""
    import importlib.abc
    import sys

    import aebench.__main__ as entry

    class Interrupted(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "aebench.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "aebench.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupted(), *sys.meta_path])
    with pytest.raises(SystemExit) as exc:
        entry.main(["run"])
    assert exc.value.code == 130
    assert capsys.readouterr().err == "aebench: interrupted\n"


def test_importing_aebench_imports_nothing_heavy():
    """Ctrl-C before the entry point runs cannot be caught: `import aebench` must stay
    a few milliseconds (no pluggy, typer or torch)."""
    import subprocess
    import sys

    code = "import sys, aebench; print(sorted({'pluggy', 'typer', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
