"""The contract between the portal and the call core: what both sides share, and the only thing they share.

* ``params``: the system parameters (name, type, default, range, description);
* ``codes``: billing modes, end directions, end reasons, failover codes; ``bans``: source-IP bans;
* ``fraud``: the anti-fraud rules, the dynamic blacklist's subjects, the fraud event;
* ``disconnects``: a request to end a live call, queued for its node;
* ``keys``: every Redis key either side uses; ``money``: money units and billed time;
* ``snapshot``: the configuration snapshot's schema and codec; ``signing``: its HMAC;
* ``cdr``: the CDR record the call core writes and the ingest decodes;
* ``state``: the call state the call core keeps in each dialog;
* ``lost``: the record and the once-only release of a call its node lost, the heartbeat's interval;
* ``pending``: a charged call's reservation, kept from its teardown until the ingest has debited it;
* ``registrations``: the contacts each node's REGISTERs saved, for the portal's registered phones;
* ``routestats`` and ``ipcountry``: the Best ASR figures and the IP-to-country table.

It must stay importable without Django. Names are re-exported here, so
``from callcore.contract import EndReason`` works whichever module holds it.
"""

from .bans import *  # noqa: F403
from .cdr import *  # noqa: F403
from .codes import *  # noqa: F403
from .disconnects import *  # noqa: F403
from .fraud import *  # noqa: F403
from .ipcountry import *  # noqa: F403
from .jsontext import *  # noqa: F403
from .keys import *  # noqa: F403
from .lost import *  # noqa: F403
from .money import *  # noqa: F403
from .params import *  # noqa: F403
from .pending import *  # noqa: F403
from .registrations import *  # noqa: F403
from .routestats import *  # noqa: F403
from .signing import *  # noqa: F403
from .snapshot import *  # noqa: F403
from .state import *  # noqa: F403
