"""Flower settings for tierline: basic auth from FLOWER_BASIC_AUTH (user:password).

Task arguments shown are the short summary tierline sends (job id, message count,
size bound), never the conversation.
"""

import os

basic_auth = [os.environ["FLOWER_BASIC_AUTH"]]
persistent = False
max_tasks = 10000
natural_time = True
