"""Flower's settings under `tierline flower` (passed as ``--conf``).

Credentials are not here: Flower reads them from its environment (``FLOWER_BASIC_AUTH``,
or the ``FLOWER_AUTH`` / ``FLOWER_OAUTH2_*`` variables), and `tierline flower` refuses to
start without them. Task arguments and results shown are the summaries tierline sends
(job id, message count, size bound; status, code, model, tier, tokens, cost).
"""

persistent = False
max_tasks = 10000
natural_time = True
