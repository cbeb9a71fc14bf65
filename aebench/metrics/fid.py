"""FID between model samples and the test split, computed by torch-fidelity.

Two feature extractors, both run *inside* torch-fidelity (it extracts the
features and does the Fréchet computation; we only hand it in-memory datasets
of uint8 ``(C, H, W)`` tensors, and never let it read or write a cache):

``inception-v3-compat``
    torch-fidelity's default (the TF-ported Inception-v3, 2048-d pool
    features). Its weights file ``weights-inception-2015-12-05-6726825d.pth``
    is what torch-fidelity downloads into ``<torch hub dir>/checkpoints``
    (``torch.hub.load_state_dict_from_url``). We never trigger that download:
    the extractor is only offered when the file already exists there, or when
    ``$AEBENCH_INCEPTION_WEIGHTS`` names a local file. A file whose sha256 is
    not the published :data:`INCEPTION_SHA256` is refused (a
    :class:`ConfigError` before training). aebench reads the file once, checks
    those bytes and loads them with ``torch.load(weights_only=True)``;
    torch-fidelity, which unpickles a weights file with ``weights_only=False``,
    gets only a copy aebench writes into a private temporary folder and removes
    (:func:`create_module`). Grayscale images are made 3-channel by repeating
    the channel.

``classifier`` (works offline)
    A small CNN classifier (:class:`ClassifierNet`) trained once per dataset on
    its train split, cached in ``cache_dir()/"fid"`` under a key made of the
    dataset name, :data:`CLASSIFIER_VERSION` (architecture + recipe) and a hash
    of the train images and labels; its test accuracy is stored with it. It is
    registered with torch-fidelity as the feature extractor
    :data:`TF_CLASSIFIER_NAME` (one name; the per-dataset weights file is given
    as ``feature_extractor_weights_path``) and FID uses its 128-d penultimate
    layer. It reads the dataset's native channels (no grayscale conversion).
    Its identity string (``aebench-classifier:<dataset>:v<version>:<hash12>``)
    is stored as the FID's ``extractor``: values from different extractors
    (or different classifiers) must never share a column.

The features of the test split (and of the training images novelty reads),
its FID statistics and the values derived from them are kept in aebench's own
feature cache (:class:`Features`, :mod:`aebench.metrics.feature_cache`):
safetensors files in ``cache_dir()/"fid"/"features"``, keyed by dataset, split,
a hash of the images, the extractor's torch-fidelity name and the layer, so a
run only pays for its own samples. A file there that is not a valid cache file
of the expected content (a planted pickle, a truncated file) is named in a
warning line, recomputed and replaced. torch-fidelity's own cache (pickled
``.pt`` files, which aebench once kept in ``cache_dir()/"fid"/"stats"``) is
never read.

The sampler is an axis (:mod:`aebench.samplers`): the metric draws
``fid_samples`` samples from each of ``ctx.samplers()`` and stores each one's
FID under its suffix: ``fid`` for the prior, ``fid_expost`` for the ex-post
Gaussian mixture, ``fid_twostage`` for the two-stage VAE, ``fid_codes`` for the
code prior of discrete models. A column is "not applicable" to a run its
sampler does not apply to (a plain AE has no prior: its ``fid`` is n/a and its
own sampler is the ex-post one). The declared columns are those of the built-in
samplers (:data:`SAMPLERS`); a sampler a plugin registers gets its values
stored under its own suffix too (``fid<suffix>``, ``fid<suffix>_sampler``, and
the twins of :mod:`aebench.metrics.samples`), in metrics.json and results.csv,
and on the leaderboard as undeclared columns (labelled with their key, never
ranked). ``fid_rec`` is the FID of the reconstructions of the first
``min(fid_samples, len(test))`` test images, for every model (Ghosh et al.
2020, Table 1's "REC" beside each sampler's). Each sampler's samples go
through the extractor once
(:class:`EvalFeatures`); the other sample metrics read the same features.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from aebench.datasets.base import ImageSet, cache_dir
from aebench.errors import ConfigError
from aebench.images import to_uint8
from aebench.metrics import feature_cache
from aebench.metrics._util import eval_mode
from aebench.metrics.context import MetricSetup, hook
from aebench.progress import Message, Stage
from aebench.samplers import codes, expost, prior, twostage
from aebench.samplers.base import uses
from aebench.specs import MetricColumn, MetricOption, MetricSpec, SamplerSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aebench.metrics.context import EvalContext

# torch-fidelity is imported where it is used: it takes seconds to import, and
# registering this metric must not slow down `aebench models`.

INCEPTION = "inception-v3-compat"
CLASSIFIER = "classifier"
EXTRACTORS = ("auto", INCEPTION, CLASSIFIER)
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
"""SHA-256 of torch-fidelity's Inception weights (its v0.2.0 release asset
:data:`INCEPTION_WEIGHTS_FILE`, 95,628,359 bytes, the same file as pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth``). By torch hub's convention (``check_hash``
in ``torch.hub.download_url_to_file``) the ``6726825d`` in the file name is the first 8
hex digits of this hash; the full value is the one recorded by projects that pin the
file. Only a file with this hash is loaded."""
ENV_INCEPTION_WEIGHTS = "AEBENCH_INCEPTION_WEIGHTS"
TF_CLASSIFIER_NAME = "aebench-classifier"
CLASSIFIER_VERSION = 1
"""Bump when :class:`ClassifierNet` or its training recipe changes (invalidates caches)."""
CLASSIFIER_FEATURE = "penultimate"
CLASSIFIER_STEPS = 400
PROGRESS_EVERY = 50
CLASSIFIER_BATCH = 128

GRAY_REPEAT = "grayscale repeated to 3 channels"
GRAY_NATIVE = "native 1 channel (classifier trained on grayscale)"
RGB = "rgb (no conversion)"


# -- results ------------------------------------------------------------------
@dataclass(frozen=True)
class FIDResult:
    """One FID value with everything needed to interpret it.

    ``extractor``: identity of the feature extractor (``inception-v3-compat``
    or ``aebench-classifier:<dataset>:v<version>:<hash12>``);
    ``extractor_detail``: human-readable detail (weights file, classifier test
    accuracy); ``grayscale_handling``: how images reached the extractor.
    """

    value: float
    extractor: str
    extractor_detail: str
    n_samples: int
    n_reference: int
    grayscale_handling: str
    feature_layer: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassifierInfo:
    """A trained, cached offline extractor."""

    path: Path
    identity: str
    test_accuracy: float | None
    meta: dict[str, Any]


# -- extractor resolution -----------------------------------------------------
def inception_weights_path() -> Path | None:
    """Local Inception weights: ``$AEBENCH_INCEPTION_WEIGHTS``, else torch-fidelity's
    download location ``<torch hub dir>/checkpoints/<file>``; ``None`` if absent.

    Looks at the file system only, never the network.
    """
    env = os.environ.get(ENV_INCEPTION_WEIGHTS)
    if env:
        p = Path(env).expanduser()
        return p if p.is_file() else None
    p = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
    return p if p.is_file() else None


def _weights_refused(path: Path, digest: str) -> ConfigError:
    return ConfigError(
        f"Inception weights {path} are not the published file (sha256 {digest[:16]}..., "
        f"expected {INCEPTION_SHA256}): refusing to load them; replace or remove the file"
        f"{' named by $' + ENV_INCEPTION_WEIGHTS if os.environ.get(ENV_INCEPTION_WEIGHTS) else ''}"
        f" (or use --fid-extractor {CLASSIFIER})"
    )


_VERIFIED: dict[tuple[str, int, int, int], str] = {}
"""sha256 of the weights files already hashed, by (path, inode, size, mtime): checking
one again before every evaluation would read 95 MB each time."""


def check_inception_weights(path: Path) -> None:
    """:class:`ConfigError` (one line naming ``path`` and :data:`INCEPTION_SHA256`) unless
    the file's sha256 is the published one. A check before training; what is loaded
    is checked again (:func:`load_inception_weights`)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    if _VERIFIED[key] != INCEPTION_SHA256:
        raise _weights_refused(path, _VERIFIED[key])


def load_inception_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read once: its bytes must hash to :data:`INCEPTION_SHA256`
    (else :class:`ConfigError`), and they are unpickled by ``torch.load(weights_only=True)``,
    which builds tensors and containers only (no code from the file runs)."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != INCEPTION_SHA256:
        raise _weights_refused(path, digest)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's restricted unpickler refused it, or not a torch file
        raise ConfigError(f"Inception weights {path} could not be read: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"Inception weights {path} hold no state dict of tensors")
    return state


def resolve_extractor(name: str = "auto") -> str:
    """``"auto"`` -> ``"inception-v3-compat"`` if its weights are local, else ``"classifier"``.

    An explicit ``"inception-v3-compat"`` without local weights is a
    :class:`ConfigError` (downloading is not attempted); so are local weights
    whose sha256 is not :data:`INCEPTION_SHA256` (:func:`check_inception_weights`),
    explicit or found by ``"auto"``.
    """
    if name not in EXTRACTORS:
        raise ConfigError(f"unknown FID extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")
    if name == CLASSIFIER:
        return name
    weights = inception_weights_path()
    if name == "auto" and weights is None:
        return CLASSIFIER
    if weights is None:
        raise ConfigError(
            f"FID extractor {INCEPTION!r} needs its weights locally: put {INCEPTION_WEIGHTS_FILE} "
            f"in {Path(torch.hub.get_dir()) / 'checkpoints'} or set ${ENV_INCEPTION_WEIGHTS} "
            f"(or use --fid-extractor {CLASSIFIER})"
        )
    check_inception_weights(weights)
    return INCEPTION


# -- helpers ------------------------------------------------------------------
def data_hash(images: torch.Tensor, labels: torch.Tensor | None = None) -> str:
    """sha256 (hex) of an image tensor's shape and bytes, and of the labels if given."""
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    h.update(images.contiguous().cpu().numpy().tobytes())
    if labels is not None:
        h.update(labels.to(torch.int64).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


class UInt8Images(Dataset):
    """In-memory torch-fidelity input: item ``i`` is a uint8 ``(C, H, W)`` tensor.

    ``repeat_to_rgb``: 1-channel images are repeated to 3 channels (Inception).
    """

    def __init__(self, images: torch.Tensor, repeat_to_rgb: bool = False) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"expected uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images.cpu()
        self.repeat = repeat_to_rgb and images.shape[1] == 1

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1) if self.repeat else x


# -- the offline classifier ---------------------------------------------------
class ClassifierNet(nn.Module):
    """LeNet-ish CNN for any ``(C, H, W)``: two 3x3 conv + pool blocks, a 4x4
    adaptive average pool, a 128-d ReLU layer (the FID features), a linear head.

    Each block pools before its ReLU: the two commute (ReLU is monotone), so the
    output is the same to the bit as ReLU-then-pool, with a quarter of the ReLU
    work.
    """

    def __init__(self, in_channels: int, num_classes: int, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return self.body(x_uint8.float().div(255.0).sub(0.5))

    def forward(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x_uint8))


@functools.cache
def _extractor_class() -> type:
    """:class:`ClassifierFeatureExtractor`, defined on first use (it subclasses
    torch-fidelity's base class, and torch-fidelity is slow to import)."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class ClassifierFeatureExtractor(FeatureExtractorBase):
        """torch-fidelity feature extractor wrapping a cached :class:`ClassifierNet`.

        torch-fidelity builds it as ``cls(name, features_list, **kwargs)``; the
        checkpoint comes from ``feature_extractor_weights_path``. ``get_name()``
        includes the checkpoint identity so torch-fidelity's caches never mix
        features of different classifiers.
        """

        def __init__(
            self,
            name: str,
            features_list: list[str],
            feature_extractor_weights_path: str | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(name, features_list)
            if feature_extractor_weights_path is None:
                raise ValueError(
                    f"{name} needs feature_extractor_weights_path (a classifier checkpoint)"
                )
            ckpt = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
            meta = ckpt["meta"]
            self.net = ClassifierNet(meta["in_channels"], meta["num_classes"])
            self.net.load_state_dict(ckpt["state_dict"])
            # NHWC: its pooling and convolutions run 3x faster on a CPU; features equal
            # NCHW's to float rounding (1e-7), hence the "-nhwc" in get_name (cache key)
            self.net.to(memory_format=torch.channels_last)
            self.identity = meta["identity"]
            self.requires_grad_(False)
            self.eval()

        def get_name(self) -> str:
            return f"{self.name}-{self.identity.replace(':', '-')}-nhwc"

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (CLASSIFIER_FEATURE, "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return CLASSIFIER_FEATURE

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> torch.Tensor:
            return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise ValueError(f"expected uint8 (B, C, H, W), got {x.dtype} {tuple(x.shape)}")
            feats = self.net.features(x.contiguous(memory_format=torch.channels_last))
            out = {CLASSIFIER_FEATURE: feats, "logits": self.net.head(feats)}
            return tuple(out[k] for k in self.features_list)

    return ClassifierFeatureExtractor


def __getattr__(name: str) -> Any:
    if name == "ClassifierFeatureExtractor":
        return _extractor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_classifier_extractor() -> None:
    """Register the classifier extractor with torch-fidelity (idempotent)."""
    import torch_fidelity
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if TF_CLASSIFIER_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(TF_CLASSIFIER_NAME, _extractor_class())


def _dataset_label(s: ImageSet) -> str:
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in (s.name or "data"))
    return name or "data"


@torch.no_grad()
def classifier_accuracy(net: ClassifierNet, test: ImageSet, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` on ``test`` (needs labels)."""
    if test.labels is None:
        raise ValueError("classifier accuracy needs a labelled test set")
    net.eval()
    correct = 0
    for i in range(0, len(test), batch_size):
        pred = net(test.images[i : i + batch_size]).argmax(1)
        correct += int((pred == test.labels[i : i + batch_size]).sum())
    return correct / max(len(test), 1)


def train_classifier(
    train: ImageSet,
    seed: int = 0,
    steps: int = CLASSIFIER_STEPS,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClassifierNet:
    """Train a :class:`ClassifierNet` on ``train`` (CPU, deterministic given ``seed``).

    Recipe (part of :data:`CLASSIFIER_VERSION`): Adam, lr 3e-3 decayed linearly
    to 0, ``steps``
    minibatches of 128 drawn from successive shuffles of ``train`` (~0.85 epoch
    of MNIST, ~35 epochs of the 8x8 digits), so the cost depends on the image
    size, not on the number of training images. Test accuracy: ~0.95 on MNIST,
    ~0.98 on digits: enough for discriminative features, a few seconds to train.
    ``on_progress(done, steps)`` is called every :data:`PROGRESS_EVERY` steps.
    """
    if train.labels is None:
        raise ConfigError(
            f"the offline FID extractor trains a classifier and needs labels; dataset "
            f"{train.name!r} has none (use --fid-extractor {INCEPTION} or --no-fid)"
        )
    num_classes = train.num_classes or int(train.labels.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ClassifierNet(train.shape[0], num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)
    n = len(train)
    net.train()
    done = 0
    while done < steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, CLASSIFIER_BATCH):
            idx = perm[i : i + CLASSIFIER_BATCH]
            loss = nn.functional.cross_entropy(net(train.images[idx]), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if on_progress is not None and (done % PROGRESS_EVERY == 0 or done == steps):
                on_progress(done, steps)
            if done == steps:
                break
    net.eval()
    return net


def classifier_identity(train: ImageSet) -> str:
    """``aebench-classifier:<dataset>:v<version>:<hash12 of train images+labels>``: what
    the offline extractor of ``train`` is trained from (its cache file's key). The
    identity stored with FID values adds its weights (:func:`weights_digest`)."""
    digest = data_hash(train.images, train.labels)[:12]
    return f"{TF_CLASSIFIER_NAME}:{_dataset_label(train)}:v{CLASSIFIER_VERSION}:{digest}"


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and values, in name order: two
    classifiers share an identity only when their weights are the same."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _classifier_path(train: ImageSet, root: Path | None = None) -> tuple[str, Path]:
    identity = classifier_identity(train)
    label, digest = _dataset_label(train), identity.rsplit(":", 1)[1]
    root = Path(root) if root is not None else cache_dir() / "fid"
    return identity, root / f"classifier-{label}-v{CLASSIFIER_VERSION}-{digest}.pt"


def classifier_cached(train: ImageSet, root: Path | None = None) -> bool:
    """Whether the offline extractor for ``train`` is trained and cached, with its
    weights matching the digest it records (see :func:`ensure_classifier`)."""
    return _cached_info(_classifier_path(train, root)[1]) is not None


def _cached_info(path: Path) -> ClassifierInfo | None:
    if not path.is_file():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    meta = ckpt["meta"]
    if meta.get("weights_sha256") != weights_digest(ckpt["state_dict"]):
        return None
    return ClassifierInfo(path, meta["identity"], meta.get("test_accuracy"), meta)


def ensure_classifier(
    train: ImageSet,
    test: ImageSet | None = None,
    root: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClassifierInfo:
    """The cached offline extractor for ``train``'s dataset, training it on a cache miss.

    Cache file: ``<root or cache_dir()/"fid">/classifier-<dataset>-v<version>-<hash12>.pt``
    (``state_dict`` + ``meta``; written atomically). Its identity is
    :func:`classifier_identity` plus the first 12 hex digits of
    :func:`weights_digest`, so values from two classifiers trained on the same data
    (retrained elsewhere, or on another torch) never share a leaderboard column. A
    cached file whose weights do not match the digest it records, or that records
    none (written before aebench named weights), is not used: the extractor is
    trained again. The test accuracy is measured on ``test`` when first trained;
    ``on_progress(step, steps)`` follows the training.
    """
    data_identity, path = _classifier_path(train, root)
    digest = data_identity.rsplit(":", 1)[1]
    cached = _cached_info(path)
    if cached is not None:
        return cached
    net = train_classifier(train, on_progress=on_progress)
    weights = weights_digest(net.state_dict())
    identity = f"{data_identity}:{weights[:12]}"
    acc = classifier_accuracy(net, test) if test is not None and test.labels is not None else None
    meta = {
        "identity": identity,
        "weights_sha256": weights,
        "dataset": train.name,
        "architecture_version": CLASSIFIER_VERSION,
        "train_hash": digest,
        "n_train": len(train),
        "train_steps": CLASSIFIER_STEPS,
        "in_channels": train.shape[0],
        "num_classes": net.head.out_features,
        "test_accuracy": acc,
        "n_test": None if test is None else len(test),
        "feature_layer": CLASSIFIER_FEATURE,
        "torch": str(torch.__version__),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"state_dict": net.state_dict(), "meta": meta}, tmp)
    os.replace(tmp, path)
    return ClassifierInfo(path, identity, acc, meta)


# -- FID ----------------------------------------------------------------------
@dataclass(frozen=True)
class Extractor:
    """A resolved feature extractor: what torch-fidelity runs, and how values are labelled.

    ``name``: its torch-fidelity registry name; ``layer``: the feature layer;
    ``weights``: the weights file handed to torch-fidelity; ``identity``,
    ``detail`` and ``grayscale``: stored with every value computed on its
    features (see :class:`FIDResult`); ``repeat``: 1-channel images are
    repeated to 3 channels before extraction (Inception).
    """

    name: str
    layer: str
    weights: str
    identity: str
    detail: str
    grayscale: str
    repeat: bool


def extractor_for(extractor: str, test: ImageSet, train_set: ImageSet | None = None) -> Extractor:
    """The :class:`Extractor` that ``extractor`` (``"auto"``, ``"inception-v3-compat"`` or
    ``"classifier"``) means for ``test``'s images; the offline classifier is trained
    on ``train_set`` (required for it) on a cache miss."""
    kind = resolve_extractor(extractor)
    gray = test.shape[0] == 1
    if kind == INCEPTION:
        weights = inception_weights_path()
        assert weights is not None  # resolve_extractor checked
        return Extractor(
            INCEPTION,
            "2048",
            str(weights),
            INCEPTION,
            f"torch-fidelity inception-v3-compat, weights {Path(weights).name}",
            GRAY_REPEAT if gray else RGB,
            True,
        )
    if train_set is None:
        raise ValueError("the classifier FID extractor needs train_set (the dataset's train split)")
    info = ensure_classifier(train_set, test)
    register_classifier_extractor()
    acc = "n/a" if info.test_accuracy is None else f"{info.test_accuracy:.4f}"
    return Extractor(
        TF_CLASSIFIER_NAME,
        CLASSIFIER_FEATURE,
        str(info.path),
        info.identity,
        f"ClassifierNet v{CLASSIFIER_VERSION} trained on {info.meta['n_train']} "
        f"{info.meta['dataset']} train images, test accuracy {acc}, "
        f"weights {Path(info.path).name} (aebench cache)",
        GRAY_NATIVE if gray else RGB,
        False,
    )


def reference_cache_name(images: ImageSet, extractor: Extractor) -> str:
    """The name of a fixed image set in aebench's feature cache: dataset, split and a
    hash of the images (``-rgb`` when repeated to 3 channels). Its features and the
    values derived from them (FID statistics, k-NN radii) are cached under it
    (:meth:`Features.key`), so each set's are extracted once per extractor."""
    name = f"aebench-{_dataset_label(images)}-{images.split or 'test'}-"
    name += data_hash(images.images)[:16]
    return name + "-rgb" if extractor.repeat else name


def feature_cache_root() -> Path:
    """Where aebench caches reference features and the values derived from them:
    ``cache_dir()/"fid"/"features"``, safetensors files (:mod:`aebench.metrics.feature_cache`).
    torch-fidelity's own cache (pickled ``.pt`` files, which aebench once kept in
    ``cache_dir()/"fid"/"stats"``) is never read nor written."""
    return cache_dir() / "fid" / "features"


def warn_stderr(text: str) -> None:
    """Print a warning line on stderr."""
    print(text, file=sys.stderr, flush=True)


def create_module(extractor: Extractor, **kwargs: Any) -> Any:
    """torch-fidelity's feature extractor (``FeatureExtractorBase``) of ``extractor``;
    ``kwargs`` go to torch-fidelity's ``create_feature_extractor`` (``cuda``, ...).

    torch-fidelity unpickles an Inception weights file with
    ``torch.load(weights_only=False)``, which runs whatever code a planted file
    holds; so it never gets the user's file: :func:`load_inception_weights` checks
    and reads that, and torch-fidelity gets a copy aebench writes into a private
    temporary folder (removed as soon as the extractor is built). The offline
    classifier's checkpoint is aebench's own and read with ``weights_only=True``.
    """
    from torch_fidelity.utils import create_feature_extractor

    kwargs = {**kwargs, "feature_extractor_weights_path": extractor.weights}
    if extractor.name != INCEPTION:
        return create_feature_extractor(extractor.name, [extractor.layer], **kwargs)
    state = load_inception_weights(Path(extractor.weights))
    with tempfile.TemporaryDirectory(prefix="aebench-inception-") as tmp:
        own = Path(tmp) / INCEPTION_WEIGHTS_FILE
        torch.save(state, own)
        kwargs["feature_extractor_weights_path"] = str(own)
        return create_feature_extractor(extractor.name, [extractor.layer], **kwargs)


class Features:
    """Features of one extractor, by torch-fidelity, and aebench's cache of the features
    of fixed image sets and of the values derived from them.

    torch-fidelity extracts the features (in-memory inputs, never its own cache);
    :meth:`reference`, :meth:`statistics` and :meth:`cached` keep their values in
    :func:`feature_cache_root` (unless ``cache`` is false), one safetensors file per
    value, named by :meth:`key`. A cache file that is not valid is named in a
    ``warn`` line (default: stderr), recomputed and replaced.
    """

    def __init__(
        self,
        extractor: Extractor,
        *,
        cuda: bool = False,
        batch_size: int = 500,
        cache: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.extractor = extractor
        self.cuda = cuda
        self.batch_size = batch_size
        self.cache = cache
        self.warn = warn or warn_stderr
        self._module: Any = None

    def _kwargs(self) -> dict[str, Any]:
        return {
            "cuda": self.cuda,
            "batch_size": self.batch_size,
            "cache": False,  # torch-fidelity's cache is pickles: aebench keeps its own
            "save_cpu_ram": True,  # no DataLoader worker processes: the data is in memory
            "verbose": False,
        }

    @property
    def module(self) -> Any:
        """torch-fidelity's feature extractor (``FeatureExtractorBase``), built once."""
        if self._module is None:
            self._module = create_module(self.extractor, **self._kwargs())
        return self._module

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Features ``(N, D)`` float32 on the CPU of uint8 ``images``, by torch-fidelity."""
        from torch_fidelity.utils import extract_featuresdict_from_input_id

        data = UInt8Images(images, repeat_to_rgb=self.extractor.repeat)
        feats = extract_featuresdict_from_input_id(1, self.module, input1=data, **self._kwargs())
        return feats[self.extractor.layer]

    def key(self, images: ImageSet, what: str) -> str:
        """The cache key of ``what`` of ``images``:
        ``<reference_cache_name>-<extractor's get_name()>-<what>-<layer>``."""
        name = reference_cache_name(images, self.extractor)
        return f"{name}-{self.module.get_name()}-{what}-{self.extractor.layer}"

    def cached(
        self,
        images: ImageSet,
        what: str,
        compute: Callable[[], Any],
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """``compute()``, a value derived from ``images``' features, kept in the feature
        cache under :meth:`key`; ``check(value)`` raises ``ValueError`` on a value read
        back that is not what ``compute`` gives (wrong keys or shape): the file is then
        ignored, with a warning, and replaced."""
        if not self.cache:
            return compute()
        key = self.key(images, what)
        path = feature_cache_root() / feature_cache.file_name(key)
        return feature_cache.cached(path, key, what, compute, check=check, warn=self.warn)

    def reference(self, images: ImageSet) -> torch.Tensor:
        """Features of a fixed image set, cached."""
        return self.cached(
            images,
            "features",
            lambda: self.extract(images.images),
            feature_cache.check_features(len(images)),
        )

    def statistics(
        self, images: ImageSet, features: Callable[[], torch.Tensor] | None = None
    ) -> dict[str, Any]:
        """FID statistics (``mu``, ``sigma``) of a fixed image set, by torch-fidelity from
        its features (``features()``, default :meth:`reference`), cached."""
        from torch_fidelity.metric_fid import fid_features_to_statistics

        get = features or (lambda: self.reference(images))
        return self.cached(
            images,
            "stat-fid",
            lambda: fid_features_to_statistics(get()),
            feature_cache.check_statistics,
        )


def frechet(features: torch.Tensor, reference: Mapping[str, Any]) -> float:
    """torch-fidelity's FID between ``features`` and the statistics ``reference``."""
    from torch_fidelity.metric_fid import (
        KEY_METRIC_FID,
        fid_features_to_statistics,
        fid_statistics_to_metric,
    )

    stats = fid_features_to_statistics(features)
    return float(fid_statistics_to_metric(stats, reference, False)[KEY_METRIC_FID])


def compute_fid(
    samples: torch.Tensor,
    test: ImageSet,
    extractor: str = "auto",
    *,
    train_set: ImageSet | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    cache: bool = True,
) -> FIDResult:
    """FID between ``samples`` (uint8 ``(N, C, H, W)``, or floats in [0, 1]
    quantised by :func:`to_uint8`) and ``test.images``, with torch-fidelity.

    ``extractor``: ``"auto"``, ``"inception-v3-compat"`` or ``"classifier"``
    (see :func:`resolve_extractor`). ``train_set`` is what the offline
    classifier is trained on (required for it); pass the full published train
    split so that every run on a dataset shares one extractor. ``cache``:
    keep the test set's features and statistics in aebench's feature cache
    (:func:`feature_cache_root`, the files an evaluation uses).
    """
    resolve_extractor(extractor)
    samples = to_uint8(samples)
    if tuple(samples.shape[1:]) != test.shape:
        raise ValueError(f"samples have shape {tuple(samples.shape[1:])}, test images {test.shape}")
    ext = extractor_for(extractor, test, train_set)
    feats = Features(
        ext, cuda=torch.device(device).type == "cuda", batch_size=batch_size, cache=cache
    )
    return FIDResult(
        value=frechet(feats.extract(samples), feats.statistics(test)),
        extractor=ext.identity,
        extractor_detail=ext.detail,
        n_samples=int(samples.shape[0]),
        n_reference=len(test),
        grayscale_handling=ext.grayscale,
        feature_layer=ext.layer,
    )


# -- the features of one evaluation --------------------------------------------------
class EvalFeatures:
    """The feature vectors of one evaluation, each input extracted once by torch-fidelity.

    FID here, and KID, precision/recall, density/coverage and novelty in
    :mod:`aebench.metrics.samples`, all read these: the ``fid_samples``
    samples of each sampler (``ctx.samples``), the test split and training
    images. The test split's and the training images' features, the test
    split's FID statistics and whatever :meth:`cached` derives from them are
    kept in aebench's feature cache (:func:`feature_cache_root`, see
    :class:`Features`), so every run on a dataset reuses them. A cache file
    that is not valid is named in a warning line (a :class:`Message` to
    ``ctx.on_event``), recomputed and replaced. Get the one of a context with
    :func:`eval_features`.
    """

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.n = int(ctx.option("fid_samples"))
        self.extractor = extractor_for(ctx.option("fid_extractor"), ctx.test, ctx.reference_train)
        on_event = ctx.on_event
        warn = (lambda text: on_event(Message(text))) if on_event is not None else None
        self.features = Features(
            self.extractor, cuda=ctx.device.type == "cuda", batch_size=ctx.batch_size, warn=warn
        )
        self._features: dict[str, torch.Tensor] = {}
        self._statistics: dict[str, Any] | None = None

    @property
    def module(self) -> Any:
        """torch-fidelity's feature extractor (``FeatureExtractorBase``), built once."""
        return self.features.module

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Features ``(N, D)`` float32 on the CPU of uint8 ``images``, by torch-fidelity."""
        return self.features.extract(images)

    def samples(self, sampler: str) -> torch.Tensor:
        """Features of ``ctx.samples(fid_samples, sampler)``."""
        key = f"samples:{sampler}"
        if key not in self._features:
            images = to_uint8(self.ctx.samples(self.n, sampler))
            shape, want = tuple(images.shape[1:]), self.ctx.test.shape
            if shape != want:
                raise ValueError(f"samples have shape {shape}, test images {want}")
            self._features[key] = self.extract(images)
        return self._features[key]

    def reference(self, images: ImageSet) -> torch.Tensor:
        """Features of a fixed image set, kept in the feature cache under its
        :func:`reference_cache_name`."""
        name = reference_cache_name(images, self.extractor)
        if name not in self._features:
            self._features[name] = self.features.reference(images)
        return self._features[name]

    def test(self) -> torch.Tensor:
        """Features of the test split."""
        return self.reference(self.ctx.test)

    def reconstruction_count(self) -> int:
        """How many test images :meth:`reconstructions` reconstructs: the first
        ``min(fid_samples, len(test))``."""
        return min(self.n, len(self.ctx.test))

    def reconstructions(self) -> torch.Tensor:
        """Features of ``model.reconstruct`` of the first :meth:`reconstruction_count`
        test images (quantised as the samples are)."""
        key = "reconstructions"
        if key not in self._features:
            ctx, n = self.ctx, self.reconstruction_count()
            parts = []
            with eval_mode(ctx.model), torch.no_grad():
                for i in range(0, n, ctx.batch_size):
                    x = ctx.test.batch(slice(i, min(i + ctx.batch_size, n)), ctx.device)
                    out = ctx.model.reconstruct(x)
                    if not torch.isfinite(out).all():
                        raise FloatingPointError("model reconstructions contain NaN or inf")
                    parts.append(to_uint8(out).cpu())
            self._features[key] = self.extract(torch.cat(parts))
        return self._features[key]

    def cached(
        self,
        images: ImageSet,
        what: str,
        compute: Callable[[], Any],
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """``compute()``, a value derived from ``images``' features (their k-NN radii, say),
        kept in the feature cache as ``<cache name>-<extractor>-<what>-<layer>``
        (see :meth:`Features.cached`: ``check`` refuses a value read back that is not
        what ``compute`` gives)."""
        return self.features.cached(images, what, compute, check)

    def test_statistics(self) -> dict[str, Any]:
        """The test split's FID statistics (``mu``, ``sigma``), in the cache file
        :func:`compute_fid` keeps them in too."""
        if self._statistics is None:
            self._statistics = self.features.statistics(self.ctx.test, self.test)
        return self._statistics

    def fid(self, sampler: str) -> float:
        """FID of ``sampler``'s samples against the test split: torch-fidelity's
        statistics and Fréchet distance, as in :func:`compute_fid`."""
        return frechet(self.samples(sampler), self.test_statistics())

    def fid_reconstructions(self) -> float:
        """FID of the test reconstructions (:meth:`reconstructions`) against the test
        split: Ghosh et al. (2020)'s "REC" column, read beside each sampler's
        (a sampler can score below it: the reconstructions are decoded means too)."""
        return frechet(self.reconstructions(), self.test_statistics())


def eval_features(ctx: EvalContext) -> EvalFeatures:
    """The :class:`EvalFeatures` of ``ctx``, made once per evaluation (``ctx.cache``)."""
    key = "fid:features"
    if key not in ctx.cache:
        ctx.cache[key] = EvalFeatures(ctx)
    return ctx.cache[key]


# -- the metric ---------------------------------------------------------------------
SAMPLERS: tuple[SamplerSpec, ...] = (prior.SAMPLER, expost.SAMPLER, twostage.SAMPLER, codes.SAMPLER)
"""The built-in samplers: each has its declared sample-metric columns (``fid``,
``fid_expost``, ``fid_twostage``, ``fid_codes`` and their twins in
:mod:`aebench.metrics.samples`). A plugin's sampler gets its values stored under
its suffix, without declared columns."""
EXPOST = expost.SAMPLER.key_suffix
"""Suffix of the keys of values computed on the ex-post sampler's samples."""


def sampler_suffix(ctx: EvalContext, sampler: str) -> str:
    """The suffix of ``sampler``'s keys: ``""`` for the prior, ``"_expost"``, ..."""
    return ctx.sampler(sampler).key_suffix


def has_prior(ctx: EvalContext) -> bool:
    """Whether the prior sampler applies (the plain, prior-sample columns)."""
    return "prior" in ctx.samplers()


def column_label(label: str, sampler: SamplerSpec) -> str:
    """``label`` for ``sampler``'s column: ``FID``; ``FID (ex-post GMM)``."""
    return label if not sampler.key_suffix else f"{label} ({sampler.label})"


def sampler_column(
    key: str, label: str, direction: str | None, definition: str, sampler: SamplerSpec, **kw: Any
) -> MetricColumn:
    """``sampler``'s twin of a sample-metric column: key ``<key><suffix>``, its label
    naming the sampler, ``definition`` with ``{samples}`` replaced by the sampler's
    description, "not applicable" to runs that are not evaluated with it."""
    return MetricColumn(
        key + sampler.key_suffix,
        column_label(label, sampler),
        "",
        direction,
        definition.format(samples=sampler.description),
        applies_to=uses(sampler.name),
        applies_text=sampler.applies_text,
        **kw,
    )


FID_KEYS = (
    "fid_rec",
    *(f"fid{s.key_suffix}" for s in SAMPLERS),
    *(f"fid{s.key_suffix}_sampler" for s in SAMPLERS),
    "fid_extractor",
    "fid_extractor_detail",
    "fid_samples",
    "fid_reference",
    "fid_grayscale",
    "fid_feature_layer",
    "fid_prior",
    "fid_rec_images",
)
"""The keys the metric stores: its columns (test reconstructions, then one per built-in
sampler), then its details."""


def compute(ctx: EvalContext) -> dict[str, Any]:
    """FID of ``fid_samples`` samples of each sampler vs the test split (None when 0).

    ``fid<suffix>`` and ``fid<suffix>_sampler`` (what the sampler drew from, for
    this model) for each of ``ctx.samplers()``: ``fid`` and ``fid_sampler`` for
    the prior, ``fid_expost`` and ``fid_expost_sampler`` for the ex-post mixture,
    ...; ``fid_prior`` is ``model.prior_description`` (how ``model.sample`` draws).
    """
    n = ctx.option("fid_samples")
    out: dict[str, Any] = dict.fromkeys(FID_KEYS)
    if not n:
        return out
    feats = eval_features(ctx)
    out["fid_rec"] = feats.fid_reconstructions()
    out["fid_rec_images"] = feats.reconstruction_count()
    for sampler in ctx.samplers():
        key = f"fid{sampler_suffix(ctx, sampler)}"
        out[key] = feats.fid(sampler)
        out[f"{key}_sampler"] = ctx.sampler_description(sampler)
    ext = feats.extractor
    out.update(
        fid_extractor=ext.identity,
        fid_extractor_detail=ext.detail,
        fid_samples=int(n),
        fid_reference=len(ctx.test),
        fid_grayscale=ext.grayscale,
        fid_feature_layer=ext.layer,
        fid_prior=ctx.model.prior_description,
    )
    return out


SPLIT_BY = ("fid_extractor", "fid_samples")
"""What every sample metric is split by: values of different extractors or sample
counts never share a leaderboard column."""
PRIOR_TEXT = prior.APPLIES
EXPOST_LABEL = expost.LABEL
PRIOR_SAMPLES = prior.SAMPLES
EXPOST_SAMPLES = expost.SAMPLES

MIN_SAMPLES = 10
"""The fewest samples FID (and the sample metrics on its features: precision/recall
and density/coverage compare 3 and 5 nearest neighbours) is computed from; fewer is
refused before training, since it gives a number that means nothing."""

SAMPLES = MetricOption(
    "fid_samples",
    int,
    10000,
    "samples drawn per sampler for FID and the other sample metrics (0: skip them)",
    profiles={"smoke": 500, "quick": 5000, "full": 10000},
    minimum=0,
    flag="--fid-samples",
    off_flag="--no-fid",
)
EXTRACTOR = MetricOption(
    "fid_extractor",
    str,
    "auto",
    "auto (Inception when its weights are on disk, else classifier), inception-v3-compat, "
    "or classifier (offline)",
    choices=EXTRACTORS,
    flag="--fid-extractor",
)


def check(setup: MetricSetup) -> None:
    """Before any cell trains: enough samples, and the extractor can be had for this
    dataset (an explicit ``inception-v3-compat`` without local weights fails in
    :func:`resolve_extractor`; the offline classifier needs class labels)."""
    n = setup.options.get("fid_samples")
    if not n:
        return
    if n < MIN_SAMPLES:
        raise ConfigError(
            f"--fid-samples {n} is too few for FID and the sample metrics: give 0 (skip them) "
            f"or at least {MIN_SAMPLES}"
        )
    kind = resolve_extractor(setup.options.get("fid_extractor", "auto"))
    if kind == CLASSIFIER and setup.train.labels is None:
        raise ConfigError(
            f"dataset {setup.dataset!r} has no class labels, so the offline FID "
            "extractor (a classifier) cannot be trained for it: use --no-fid, or "
            "--fid-extractor inception-v3-compat with its weights on disk"
        )


def prepare(setup: MetricSetup) -> None:
    """Train the offline extractor once per dataset, before parallel cells start."""
    if not setup.options.get("fid_samples"):
        return
    if resolve_extractor(setup.options.get("fid_extractor", "auto")) != CLASSIFIER:
        return
    if classifier_cached(setup.train):
        return
    emit = setup.on_event
    what = f"training the offline FID extractor for {setup.dataset} (once; cached)"
    emit(Stage(what))

    def progress(step: int, steps: int) -> None:
        emit(Stage(f"{what}: step {step}/{steps}"))

    info = ensure_classifier(setup.train, setup.test, on_progress=progress)
    acc = "n/a" if info.test_accuracy is None else f"{info.test_accuracy:.3f}"
    emit(Message(f"offline FID extractor for {setup.dataset}: test accuracy {acc}"))


METRIC = MetricSpec(
    "fid",
    compute,
    description="Fréchet inception distance (torch-fidelity) between model samples and the "
    "test split, per sampler (prior; ex-post GMM; two-stage VAE; code prior); stored with "
    "its extractor, sample count and grayscale handling",
    group="samples",
    order=30,
    options=(SAMPLES, EXTRACTOR),
    details=FID_KEYS[1 + len(SAMPLERS) :],  # beside its columns
    check=check,
    prepare=prepare,
    columns=(
        MetricColumn(
            "fid_rec",
            "FID (test reconstructions)",
            "",
            "min",
            "Fréchet distance of feature statistics, reconstructions of the first n test "
            "images vs the test split (Ghosh et al. 2020's 'REC'): how near the "
            "decoder comes to real images given a test image's code; compares only "
            "within one extractor and n",
            split_by=SPLIT_BY,
            group="reconstruction",  # no sampler: ranked across every model, not per sampler
        ),
        *(
            sampler_column(
                "fid",
                "FID",
                "min",
                "Fréchet distance of feature statistics, {samples} vs the test split; "
                "compares only within one extractor and n",
                sampler,
                split_by=SPLIT_BY,
            )
            for sampler in SAMPLERS
        ),
    ),
)
register_metrics = hook(METRIC)
