"""Turn options (CLI, Python or a suite file) into a validated list of runs.

Everything a user can get wrong is checked here, before any training starts:
names, numbers, devices, dataset files, model configurations.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aebench.errors import ConfigError, UnknownNameError, suggest

# Documented epoch and sample budgets. `quick` is the default: on a 2-core CPU
# `--models vae,ae --datasets mnist` finishes in about ten minutes.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "epochs": 20,
        "fid_samples": 500,
        "nll_k": 16,
        "nll_samples": 200,
        "probe_samples": 1000,
        "limit": 2000,
    },
    "quick": {
        "epochs": 10,
        "fid_samples": 5000,
        "nll_k": 64,
        "nll_samples": 1000,
        "probe_samples": 5000,
        "limit": None,
    },
    "full": {
        "epochs": 30,
        "fid_samples": 10000,
        "nll_k": 1000,
        "nll_samples": 10000,
        "probe_samples": 10000,
        "limit": None,
    },
}
DEFAULT_PROFILE = "quick"
FID_EXTRACTORS = ("auto", "inception-v3-compat", "classifier")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class Options:
    """Every setting of a benchmark. ``None`` means "not given" (profile/suite decide)."""

    models: list[str] | None = None
    datasets: list[str] | None = None
    latent_dims: list[int] | None = None
    betas: list[float] | None = None
    seeds: list[int] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    limit: int | None = None
    likelihood: str | None = None
    hidden_dims: list[int] | None = None
    val_size: float | None = None
    fid_extractor: str | None = None
    fid_samples: int | None = None
    nll_k: int | None = None
    nll_samples: int | None = None
    probe_samples: int | None = None
    dataset_options: dict[str, Any] | None = None
    profile: str | None = None

    def merged(self, over: Options) -> Options:
        """Values of ``over`` where given, else ours."""
        out = Options(**asdict(self))
        for f in fields(self):
            value = getattr(over, f.name)
            if value is not None:
                setattr(out, f.name, value)
        return out


@dataclass(frozen=True)
class RunConfig:
    """One run: everything that determines its numbers (its key) plus labels."""

    model: str
    dataset: str
    seed: int
    latent_dim: int
    beta: float | None
    model_config: dict[str, Any]
    epochs: int
    batch_size: int
    lr: float
    limit: int | None
    val_size: float
    fid_extractor: str
    fid_samples: int
    nll_k: int
    nll_samples: int
    probe_samples: int
    device: str
    profile: str
    dataset_options: dict[str, Any] = field(default_factory=dict)
    family: str = field(default="", compare=False)
    arch: str = field(default="", compare=False)
    plugin: str = field(default="", compare=False)
    description: str = field(default="", compare=False)

    _LABELS = ("family", "arch", "plugin", "description", "profile")

    @property
    def key(self) -> str:
        """Hash of every setting that affects the results (labels excluded)."""
        data = {k: v for k, v in asdict(self).items() if k not in self._LABELS}
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def run_id(self) -> str:
        ds = re.sub(r"[^a-z0-9.-]+", "-", self.dataset.lower()).strip("-")[:40]
        beta = f"-b{self.beta:g}" if self.beta is not None else ""
        return f"{ds}_{self.model}_z{self.latent_dim}{beta}_s{self.seed}_{self.key}"

    @property
    def label(self) -> str:
        beta = f", β={self.beta:g}" if self.beta is not None else ""
        return f"{self.model} on {self.dataset} (z={self.latent_dim}{beta}, seed {self.seed})"

    def to_dict(self) -> dict[str, Any]:
        out = {"run_id": self.run_id, "key": self.key, **asdict(self)}
        out["likelihood"] = self.model_config.get("likelihood")
        return out


# -- parsing user input ---------------------------------------------------------
def parse_options(option: str, value: str | None) -> dict[str, str] | None:
    """``'size=32,channels=3'`` -> ``{'size': '32', 'channels': '3'}``."""
    if value is None:
        return None
    out: dict[str, str] = {}
    for item in (v.strip() for v in value.split(",")):
        key, sep, val = item.partition("=")
        if not item or not sep or not key.strip():
            raise ConfigError(
                f"{option}: expected KEY=VALUE pairs separated by commas, got {value!r}"
            )
        out[key.strip()] = val.strip()
    return out


def parse_list(option: str, value: str | None, kind: type = str) -> list[Any] | None:
    """``'2,16'`` -> ``[2, 16]`` with a one-line error naming the option."""
    if value is None:
        return None
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:
        raise ConfigError(f"{option}: expected a comma-separated list, got {value!r}")
    try:
        return [kind(v) for v in items]
    except ValueError:
        what = {int: "integers", float: "numbers"}.get(kind, "values")
        raise ConfigError(f"{option}: expected comma-separated {what}, got {value!r}") from None


SUITE_KEYS = {f.name for f in fields(Options)}


def load_suite(path: str | Path) -> tuple[dict[str, Any], list[Options]]:
    """Read a suite TOML file: top-level keys are defaults, each ``[[grid]]`` a sub-grid."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--suite: no such file {str(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--suite {path}: invalid TOML: {exc}") from None
    meta = {k: data.pop(k) for k in ("name", "description", "reproduces") if k in data}
    grids = data.pop("grid", [{}])
    base = _suite_options(path, data)
    return meta, [base.merged(_suite_options(path, g)) for g in grids]


def _suite_options(path: Path, table: dict[str, Any]) -> Options:
    for key in table:
        if key not in SUITE_KEYS:
            close = suggest(key, SUITE_KEYS)
            hint = f" (did you mean {close}?)" if close else ""
            raise ConfigError(f"--suite {path}: unknown key {key!r}{hint}")
    opts = Options(**table)
    for name in ("models", "datasets", "latent_dims", "betas", "seeds", "hidden_dims"):
        value = getattr(opts, name)
        if value is not None and not isinstance(value, list):
            setattr(opts, name, [value])
    return opts


# -- validation and expansion ---------------------------------------------------
def resolve_device(name: str) -> str:
    import torch

    if name not in DEVICES:
        raise UnknownNameError("device", name, DEVICES)
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("--device mps: MPS is not available on this machine")
    return name


def _positive(option: str, value: float | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{option}: expected a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{option} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def expand(options: Options, device: str) -> list[RunConfig]:
    """Validate one grid and expand it into runs (models × datasets × dims × betas × seeds)."""
    from aebench.api import dataset_spec
    from aebench.plugins import get_plugins

    profile = options.profile or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    base = {"batch_size": 128, "lr": 1e-3, "val_size": 0.1, "fid_extractor": "auto"}
    o = Options(**{**base, **PROFILES[profile], "profile": profile}).merged(options)
    if not o.models:
        raise ConfigError("--models is required (e.g. --models vae,ae; see `aebench models`)")
    if not o.datasets:
        raise ConfigError("--datasets is required (e.g. --datasets digits; see `aebench datasets`)")
    for option, value in [
        ("--epochs", o.epochs),
        ("--batch-size", o.batch_size),
        ("--lr", o.lr),
        ("--limit", o.limit),
        ("--nll-k", o.nll_k),
        ("--val-size", o.val_size),
    ]:
        _positive(option, value)
    for option, value in [
        ("--fid-samples", o.fid_samples),
        ("--nll-samples", o.nll_samples),
        ("--probe-samples", o.probe_samples),
    ]:
        _positive(option, value, allow_zero=True)
    for option, values in [("--latent-dims", o.latent_dims), ("--hidden-dims", o.hidden_dims)]:
        for v in values or []:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{option}: expected positive integers, got {v!r}")
    for b in o.betas or []:
        _positive("--betas", b)
    for s in o.seeds or []:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"--seeds: expected non-negative integers, got {s!r}")
    for option, value in [("--epochs", o.epochs), ("--batch-size", o.batch_size)]:
        if not isinstance(value, int):
            raise ConfigError(f"{option}: expected an integer, got {value!r}")
    if o.fid_extractor is not None and o.fid_extractor not in FID_EXTRACTORS:
        raise UnknownNameError("FID extractor", o.fid_extractor, FID_EXTRACTORS)

    models = get_plugins().models.select(o.models)
    if o.betas and not any("beta" in {f.name for f in fields(m.config_cls)} for m in models):
        raise ConfigError("--betas: none of the selected models has a β (try --models beta-vae)")
    datasets = []
    for name in o.datasets:
        dataset_spec(name)  # unknown names and bad `name:ARG` spellings fail here
        datasets.append(name)

    runs: list[RunConfig] = []
    for dataset in datasets:
        for spec in models:
            cfg_fields = {f.name for f in fields(spec.config_cls)}
            betas = (o.betas or [None]) if "beta" in cfg_fields else [None]
            for latent in o.latent_dims or [spec.config_cls().latent_dim]:
                for beta in betas:
                    config: dict[str, Any] = {"latent_dim": latent}
                    if beta is not None:
                        config["beta"] = float(beta)
                    if o.likelihood is not None:
                        config["likelihood"] = o.likelihood
                    if o.hidden_dims is not None:
                        config["hidden_dims"] = tuple(o.hidden_dims)
                    try:
                        model_config = spec.config_cls.from_options(**config).to_dict()
                    except ConfigError as exc:
                        raise ConfigError(f"model {spec.name}: {exc}") from None
                    for seed in o.seeds or [0]:
                        runs.append(
                            RunConfig(
                                model=spec.name,
                                dataset=dataset,
                                seed=seed,
                                latent_dim=latent,
                                beta=model_config.get("beta"),
                                model_config=model_config,
                                epochs=o.epochs,
                                batch_size=o.batch_size,
                                lr=o.lr,
                                limit=o.limit,
                                val_size=o.val_size,
                                fid_extractor=o.fid_extractor,
                                fid_samples=o.fid_samples,
                                nll_k=o.nll_k,
                                nll_samples=o.nll_samples,
                                probe_samples=o.probe_samples,
                                device=device,
                                profile=profile,
                                dataset_options=dict(sorted((o.dataset_options or {}).items())),
                                family=spec.family,
                                arch=spec.arch,
                                plugin=spec.plugin,
                                description=spec.description,
                            )
                        )
    return runs


def plan(grids: list[Options], device: str = "auto") -> list[RunConfig]:
    """Validate every grid and return the de-duplicated list of runs."""
    resolved = resolve_device(device)
    seen: dict[str, RunConfig] = {}
    for grid in grids:
        for run in expand(grid, resolved):
            seen.setdefault(run.run_id, run)
    return list(seen.values())
