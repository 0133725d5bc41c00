"""msixcore: simulate how MSI-X and IMS interrupts are allocated, remapped and
delivered on a virtualized x86 host.

The models run in Rust (``msixcore._core``); this package re-exports them with
types and adds scenarios, statistics, reports and the CLI on top.
"""

from msixcore._core import (
    AccountingError,
    InvalidArgument,
    InvalidOperation,
    MmioError,
    MsixError,
    NoSpace,
    VectorTable,
    __version__,
)
from msixcore.engine_config import POLICIES, SEMANTICS, validate_engine_config
from msixcore.parameters import Param
from msixcore.report import RunRecord, format_table, make_record, results_json
from msixcore.scenario_file import RunSpec, load_file
from msixcore.scenarios import (
    SCENARIOS,
    Scenario,
    get_scenario,
    storm_closed_form_lost,
)
from msixcore.simulation import (
    OUTCOMES,
    EngineUnavailable,
    RunResult,
    engine_available,
    run_config,
)
from msixcore.stats import (
    RatePerMillion,
    chi2_quantile,
    garwood_interval,
    merge_results,
    per_million,
)

__all__ = [
    "OUTCOMES",
    "POLICIES",
    "SCENARIOS",
    "SEMANTICS",
    "AccountingError",
    "EngineUnavailable",
    "InvalidArgument",
    "InvalidOperation",
    "MmioError",
    "MsixError",
    "NoSpace",
    "Param",
    "RatePerMillion",
    "RunRecord",
    "RunResult",
    "RunSpec",
    "Scenario",
    "VectorTable",
    "__version__",
    "chi2_quantile",
    "engine_available",
    "format_table",
    "garwood_interval",
    "get_scenario",
    "load_file",
    "make_record",
    "merge_results",
    "per_million",
    "results_json",
    "run_config",
    "storm_closed_form_lost",
    "validate_engine_config",
]
