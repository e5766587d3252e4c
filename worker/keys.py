"""Every Redis key tierline writes, with its prefix and default TTL, in one place.

The routing state (busy flags, delivery counters, metrics, the simulator's script)
lives under one configurable prefix (``TIERLINE_KEY_PREFIX``, default ``llm:``);
Celery's own keys (queues, ``celery-task-meta-<id>`` results) are Celery's, and
results expire after ``TIERLINE_RESULT_EXPIRES_S``.

| key                                  | value                  | TTL                   |
|--------------------------------------|------------------------|-----------------------|
| <prefix>busy:<model>                 | "<kind>:<code>"        | BUSY_TTL_S / Retry-After / CONFIG_TTL_S |
| <prefix>deliveries:<job id>:<level>  | delivery count         | DELIVERIES_TTL_S      |
| <prefix>lease:<job id>:<level>       | the running worker     | LEASE_TTL_S (renewed) |
| <prefix>journal:<job id>             | JSON attempts so far   | JOURNAL_TTL_S         |
| <prefix>metrics                      | hash of counters       | METRICS_TTL_S         |
| <prefix>series:total                 | hash of series (cumulative, exported) | METRICS_TTL_S |
| <prefix>series:<width>:<start>       | hash of series in one time bucket | TIERLINE_METRICS_RETENTION_S |
| <prefix>series:index                 | zset of bucket keys by start time | TIERLINE_METRICS_RETENTION_S |
| <prefix>sim:script                   | JSON simulation script | SIM_SCRIPT_TTL_S      |
| <prefix>overlay:version              | current overlay version | none (configuration) |
| <prefix>overlay:versions             | hash version → JSON change record | none (configuration) |
| <prefix>circuit:<model>              | "<state>:<since unix s>" | HEALTH_STATE_TTL_S  |
| <prefix>health:<model>               | hash "<bucket>:<field>" → count | window + bucket |
| <prefix>rl:req:<model>               | sorted set of admitted calls (ms) | the limit's window |
| <prefix>rl:tok:<model>               | hash bucket → tokens admitted | the limit's window |
| <prefix>rl:cap:<model>               | calls the provider says remain | its reset time   |
| <prefix>rl:tcap:<model>              | tokens the provider says remain | its reset time  |
| <prefix>spend:<day>:<team>           | micro-dollars spent that UTC day | SPEND_TTL_S     |
| <prefix>shadow:<model>               | hash of shadow-vs-live sums | SHADOW_TTL_S         |
| <prefix>carry:secret                 | generated HMAC key     | none (see below)      |
| tierline-collected-<job id>          | "1"                    | COLLECTED_TTL_S       |

The `collected` marker lives on the result backend's Redis, beside Celery's own
``celery-task-meta-<id>`` results, and like them it does not take the routing prefix.
Producers write it, so it is part of the contract (`contract.keys`, re-exported here):
a batch producer that has written a result to its output file deletes the stored result
and leaves the marker instead, and a late duplicate of that job is not run again. On a
database result backend the marker is the row's status ``COLLECTED`` instead; the
results interface (`results/`) reads and writes both.

`carry:secret` is the one key without a TTL: the key that seals re-queued jobs' carries
(worker/carry_seal.py) when ``TIERLINE_CARRY_SECRET`` is not set. It must outlive every
job in flight; deleting it fails the carries sealed with it (``forged_carry``).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.keys import COLLECTED_PREFIX, COLLECTED_TTL_S, collected

__all__ = ["BUSY_TTL_S", "COLLECTED_PREFIX", "COLLECTED_TTL_S", "CONFIG_TTL_S", "DEFAULT_PREFIX",
           "DELIVERIES_TTL_S", "GLOBAL_TEAM", "HEALTH_STATE_TTL_S", "METRICS_TTL_S", "SHADOW_TTL_S",
           "SIM_SCRIPT_TTL_S", "SPEND_TTL_S", "Keys", "collected"]

DEFAULT_PREFIX = "llm:"

BUSY_TTL_S = 60
CONFIG_TTL_S = 900
DELIVERIES_TTL_S = 86_400
METRICS_TTL_S = 7 * 86_400
# A running job's lease is renewed every LEASE_RENEW_S; a dead worker's lapses within LEASE_TTL_S.
LEASE_TTL_S = 15
LEASE_RENEW_S = 5
JOURNAL_TTL_S = 86_400
SIM_SCRIPT_TTL_S = 86_400
# The live overlay is configuration an operator wrote, not state: it never expires.
HEALTH_STATE_TTL_S = 86_400
SPEND_TTL_S = 3 * 86_400
SHADOW_TTL_S = 30 * 86_400
GLOBAL_TEAM = "*"


@dataclass(frozen=True)
class Keys:
    """Builds the project's Redis keys under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def busy(self, model: str) -> str:
        return f"{self.prefix}busy:{model}"

    def deliveries(self, job_id: str, level: int) -> str:
        return f"{self.prefix}deliveries:{job_id}:{level}"

    def lease(self, job_id: str, level: int) -> str:
        return f"{self.prefix}lease:{job_id}:{level}"

    def journal(self, job_id: str) -> str:
        return f"{self.prefix}journal:{job_id}"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}metrics"

    @property
    def overlay_version(self) -> str:
        return f"{self.prefix}overlay:version"

    @property
    def overlay_versions(self) -> str:
        return f"{self.prefix}overlay:versions"

    def circuit(self, model: str) -> str:
        return f"{self.prefix}circuit:{model}"

    def health(self, model: str) -> str:
        return f"{self.prefix}health:{model}"

    def rate_requests(self, model: str) -> str:
        return f"{self.prefix}rl:req:{model}"

    def rate_tokens(self, model: str) -> str:
        return f"{self.prefix}rl:tok:{model}"

    def rate_cap(self, model: str) -> str:
        return f"{self.prefix}rl:cap:{model}"

    def rate_token_cap(self, model: str) -> str:
        return f"{self.prefix}rl:tcap:{model}"

    def spend(self, day: str, team: str) -> str:
        """Spend of `team` (GLOBAL_TEAM: everything) on UTC `day` (YYYY-MM-DD)."""
        return f"{self.prefix}spend:{day}:{team}"

    def shadow(self, model: str) -> str:
        return f"{self.prefix}shadow:{model}"

    @property
    def carry_secret(self) -> str:
        return f"{self.prefix}carry:secret"

    @property
    def series_total(self) -> str:
        return f"{self.prefix}series:total"

    def series_bucket(self, width_s: int, start: int) -> str:
        return f"{self.prefix}series:{width_s}:{start}"

    @property
    def series_index(self) -> str:
        return f"{self.prefix}series:index"

    @property
    def sim_script(self) -> str:
        return f"{self.prefix}sim:script"
