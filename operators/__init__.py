"""Operator tools on the worker side: the `tierline` command, the demo, the catalog and
counter views, the embedded Redis launcher and the worker launcher, the metrics exporter,
the report and its charts.

They use the worker's code and its dependencies (``pip install "tierline[worker]"``),
and the client (`producers`) to send jobs; nothing in the client or the worker imports them.
"""
