"""Options of the neural comparison, validated where they are made.

Two layers of models:

- ``NeuralSelection`` (which cells) and ``AnalysisOptions`` (how they are compared) are what
  ``run_rsa`` and ``run_physiology`` take; frozen pydantic dataclasses, so ``dataclasses``
  helpers keep working and a value out of range is refused naming its field.
- ``PhysiologyOptions`` and ``RSAOptions`` are the options of ``mnc physiology`` and
  ``mnc rsa`` with the flags' names as fields (``RSAOptions(bootstrap=-1)`` names
  ``bootstrap``); ``mnc.cli.options`` makes their flags, whose help is each field's text.
  ``.selection()`` and ``.analysis()`` give the two models above.

Nothing here needs pandas, so ``--help`` works without the neuro extra.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass

from mnc.neuro.layers import ALLEN_AREAS
from mnc.neuro.sources.allen import ResponseWindow

SSMMethod = Literal["spearman", "pearson"]
Regression = Literal["ridge", "pls"]
RegressionFlag = Literal["ridge", "pls", "none"]
Normalization = Literal["imagenet", "none"]
StepWord = Literal["last", "readout"]
Step = Annotated[int, Field(ge=0)] | StepWord

_DATACLASS_CONFIG = ConfigDict(use_attribute_docstrings=True, arbitrary_types_allowed=True)


@dataclass(frozen=True, config=_DATACLASS_CONFIG)
class NeuralSelection:
    """Which recorded cells to use and how Brain Observatory traces become responses.

    ``areas``, ``cre_lines`` and ``depths_um`` filter every source (None: all); the other
    fields apply to a Brain Observatory cache only.
    """

    areas: tuple[str, ...] | None = None
    cre_lines: tuple[str, ...] | None = None
    depths_um: tuple[int, ...] | None = None
    max_per_group: Annotated[int, Field(ge=1)] | None = None
    """At most this many sessions per area and Cre line (None: all)."""
    window: ResponseWindow = ResponseWindow()
    allow_download: bool = False
    skip_missing: bool = False
    min_cells: int = 5
    """Regions with fewer recorded cells are left out."""


@dataclass(frozen=True, config=_DATACLASS_CONFIG)
class AnalysisOptions:
    methods: tuple[SSMMethod, ...] = ("spearman", "pearson")
    """RDM comparison methods; the first one ranks populations and draws the bar plot."""
    n_splits: Annotated[int, Field(ge=1)] = 5
    """Random split-halves of the trials for data RDMs, noise ceilings and reliabilities."""
    n_boot: Annotated[int, Field(ge=0)] = 100
    """0 turns SSM intervals off; any other value keeps them (leave-one-image-out jackknife,
    one replicate per image; the name stays for saved options and scripts)."""
    seed: int = 0
    batch_size: Annotated[int, Field(ge=1)] = 32
    max_units: Annotated[int, Field(ge=1)] = 2000
    """Model units kept per population for per-unit statistics (physiology)."""
    normalize: Normalization = "imagenet"
    regressions: tuple[Regression, ...] = ("ridge", "pls")
    """Predictivity regressions (empty: skip predictivity)."""
    n_folds: Annotated[int, Field(ge=2)] = 5
    min_reliability: float = 0.3
    map_inhibitory: bool = False
    """Map regions recorded in inhibitory Cre lines (Sst, Vip, Pvalb) to the IR's excitatory
    population of their area and layer (default: left unmapped)."""
    step: int | str = "readout"
    """Recurrent networks: the step whose activity is compared (0-based), ``"last"``, or
    ``"readout"``: the mean over the steps the network's readout averages (the last step
    unless its IR sets ``dynamics.readout_steps``). A feed-forward network has step 0 only."""


def _flag(default: Any, text: str, **extra: Any) -> Any:
    """A field's default and command-line help (and metavar, switch, ...), kept in the
    model's schema."""
    return Field(default, description=" ".join(text.split()), json_schema_extra=extra or None)


class PhysiologyOptions(BaseModel):
    """The options of ``mnc physiology`` (and those ``mnc rsa`` shares), by flag name."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seed: Annotated[int, Field(ge=0)] = _flag(
        0, "seed of untrained weights and splits (default 0)")
    areas: tuple[str, ...] | None = _flag(
        None,
        "visual areas, e.g. " + ",".join(ALLEN_AREAS) + " (default: every area in the data)",
        metavar="AREA,...")
    cre_lines: tuple[str, ...] | None = _flag(
        None, "Cre lines, e.g. Cux2-CreERT2,Rbp4-Cre_KL100 (default all)", metavar="LINE,...")
    depths: tuple[int, ...] | None = _flag(
        None, "imaging depths in micrometres, e.g. 175,275 (default all)", metavar="UM,...")
    max_sessions: Annotated[int, Field(ge=1)] | None = _flag(
        None, "at most N natural-scenes sessions per area and Cre line", metavar="N")
    window: Annotated[float, Field(gt=0)] = _flag(
        0.5, "response window after image onset in seconds (default 0.5)", metavar="S")
    baseline: Annotated[float, Field(ge=0)] = _flag(
        0.0, "subtract the mean dF/F of this long before onset (default 0)", metavar="S")
    download: bool = _flag(
        False, "let allensdk download missing tables and sessions", flag_action="store_true")
    skip_missing: bool = _flag(
        False, "analyse only sessions already in the cache", flag_action="store_true")
    min_cells: int = _flag(
        5, "leave out regions with fewer recorded cells (default 5)")
    splits: Annotated[int, Field(ge=1)] = _flag(
        5, "random split-halves of the trials (default 5)")
    batch_size: Annotated[int, Field(ge=1)] = _flag(
        32, "images per forward pass (default 32)")
    max_units: Annotated[int, Field(ge=1)] = _flag(
        2000, "model units sampled per population for per-unit statistics")
    normalize: Normalization = _flag(
        "imagenet", "input normalisation after scaling to [0, 1] (default imagenet)")
    min_reliability: float = _flag(
        0.3, "split-half reliability a cell needs to be scored (default 0.3)")
    step: Step = _flag(
        "readout",
        "recurrent networks: compare the activity at step N (0-based), at the last step, or "
        "averaged over the steps the readout averages (default readout: the last step unless "
        "the spec sets readout steps); a feed-forward network has step 0 only",
        metavar="N|last|readout")
    map_inhibitory: bool = _flag(
        False, "map regions of inhibitory Cre lines (Sst, Vip, Pvalb) to the IR's excitatory "
        "population of their area and layer (default: left unmapped, compared with every "
        "population)", flag_action="store_true")

    def selection(self) -> NeuralSelection:
        """Which cells these options select."""
        return NeuralSelection(
            areas=self.areas or None, cre_lines=self.cre_lines or None,
            depths_um=self.depths or None, max_per_group=self.max_sessions,
            window=ResponseWindow(window_s=self.window, baseline_s=self.baseline),
            allow_download=self.download, skip_missing=self.skip_missing,
            min_cells=self.min_cells)

    def analysis(self) -> AnalysisOptions:
        """How the selected cells are compared (physiology: no RSA methods of its own)."""
        return AnalysisOptions(
            n_splits=self.splits, seed=self.seed, batch_size=self.batch_size,
            max_units=self.max_units, normalize=self.normalize,
            min_reliability=self.min_reliability, step=self.step,
            map_inhibitory=self.map_inhibitory)


class RSAOptions(PhysiologyOptions):
    """The options of ``mnc rsa``, by flag name."""

    methods: tuple[SSMMethod, ...] | None = _flag(
        None, "RDM comparisons, comma-separated (spearman,pearson); the first ranks populations "
        "(default both)", metavar="METHOD,...")
    bootstrap: Annotated[int, Field(ge=0)] = _flag(
        100, "0 turns SSM intervals off; any other value keeps them (they come from the "
        "leave-one-image-out jackknife, one replicate per image)", metavar="N")
    regressions: tuple[RegressionFlag, ...] | None = _flag(
        None, "predictivity regressions, comma-separated (ridge,pls); 'none' skips predictivity "
        "(default both)", metavar="REGRESSION,...")
    folds: Annotated[int, Field(ge=2)] = _flag(
        5, "cross-validation folds over images (default 5)")

    def analysis(self) -> AnalysisOptions:
        """How the selected cells are compared; methods and regressions in the order given,
        each once (``none`` skips predictivity)."""
        import dataclasses

        methods = tuple(dict.fromkeys(self.methods or ("spearman", "pearson")))
        regressions = tuple(name for name in dict.fromkeys(self.regressions or ("ridge", "pls"))
                            if name != "none")
        return dataclasses.replace(super().analysis(), methods=methods, n_boot=self.bootstrap,
                                   regressions=regressions, n_folds=self.folds)
