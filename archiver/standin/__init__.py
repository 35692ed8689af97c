"""A stand-in of both video services and their media host, for `archiver demo` and the tests.

`StandIn` runs the face-swap video task history, Chanjing's token and lip-sync list endpoints
(QPS limit included) and an S3-like media host on loopback, from a `Dataset` generated from a
seed. `Faults` make it misbehave on demand, on the wire; `Stats` record what it saw.
"""

from archiver.standin.dataset import ABSENT, Dataset, DatasetSpec
from archiver.standin.faults import Fault, Faults
from archiver.standin.server import StandIn
from archiver.standin.stats import RecordedRequest, Stats

__all__ = [
    "ABSENT",
    "Dataset",
    "DatasetSpec",
    "Fault",
    "Faults",
    "RecordedRequest",
    "StandIn",
    "Stats",
]
