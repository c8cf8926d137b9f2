"""Results: goals measured online and in store, campaign funnels with holdout lift, channel health.

The pages only read. Each figure is one aggregate statement grouped in the database, so the number of
queries a page makes is fixed by its layout, never by the data. The goal dashboard reads daily roll-ups
(``campaigns.models.rollups``) that ``rollups.results_rollups_refresh`` keeps current from beat; its
selectors compute the same tables from the base tables with ``direct=True``.
"""
