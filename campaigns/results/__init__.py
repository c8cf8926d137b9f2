"""Results: goals measured online and in store, campaign funnels with holdout lift, channel health.

Everything here reads; nothing writes. Each figure is one aggregate statement grouped in the database,
so the number of queries a page makes is fixed by its layout, never by the data.
"""
