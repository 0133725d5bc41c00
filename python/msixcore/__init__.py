"""msixcore: simulate how MSI-X and IMS interrupts are allocated, remapped and
delivered on a virtualized x86 host.

The models run in Rust (``msixcore._core``); this package re-exports them with
types and adds scenarios, statistics, reports and the CLI on top.
"""

from msixcore._core import (
    FIRE_OUTCOMES,
    AccountingError,
    AmdIrte,
    AmdIrteTables,
    AmdRemapper,
    InterruptRemapper,
    InvalidArgument,
    InvalidOperation,
    IrqMatrix,
    Irte,
    IrteTable,
    MmioError,
    MsixError,
    NoSpace,
    RemapResult,
    Simulation,
    VectorDomain,
    VectorTable,
    __version__,
    compose_amd_msi,
    compose_msi,
    decode_msi,
    run_simulation,
)
from msixcore.engine_config import (
    FAILURE_MODES,
    POLICIES,
    SEMANTICS,
    normalize_config,
    validate_engine_config,
)
from msixcore.host import Device, Host, Spoof
from msixcore.parameters import Param
from msixcore.policies import (
    DynamicPolicy,
    HypercallPolicy,
    ImsPolicy,
    NoresizePolicy,
    Policy,
    UpfrontPolicy,
    template,
)
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
    Replications,
    RunResult,
    RunStats,
    Usage,
    run_config,
    run_replications,
)
from msixcore.stats import (
    RatePerMillion,
    garwood_interval,
    merge_results,
    per_million,
)
from msixcore.sweep import sweep
from msixcore.sweep_spec import SweepSpec, load_sweep_spec, parse_sweep_spec

__all__ = [
    "FAILURE_MODES",
    "FIRE_OUTCOMES",
    "OUTCOMES",
    "POLICIES",
    "SCENARIOS",
    "SEMANTICS",
    "AccountingError",
    "AmdIrte",
    "AmdIrteTables",
    "AmdRemapper",
    "Device",
    "DynamicPolicy",
    "Host",
    "HypercallPolicy",
    "ImsPolicy",
    "InterruptRemapper",
    "InvalidArgument",
    "InvalidOperation",
    "IrqMatrix",
    "Irte",
    "IrteTable",
    "MmioError",
    "MsixError",
    "NoSpace",
    "NoresizePolicy",
    "Param",
    "Policy",
    "RatePerMillion",
    "RemapResult",
    "Replications",
    "RunRecord",
    "RunResult",
    "RunSpec",
    "RunStats",
    "Scenario",
    "Simulation",
    "Spoof",
    "SweepSpec",
    "UpfrontPolicy",
    "Usage",
    "VectorDomain",
    "VectorTable",
    "__version__",
    "compose_amd_msi",
    "compose_msi",
    "decode_msi",
    "format_table",
    "garwood_interval",
    "get_scenario",
    "load_file",
    "load_sweep_spec",
    "make_record",
    "merge_results",
    "normalize_config",
    "parse_sweep_spec",
    "per_million",
    "results_json",
    "run_config",
    "run_replications",
    "run_simulation",
    "storm_closed_form_lost",
    "sweep",
    "template",
    "validate_engine_config",
]
