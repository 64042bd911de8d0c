"""``opinbench estimate``: what a set of tasks costs in tokens, judge money and GPU time.

`counts` builds the real prompts and counts them; `prices` reads the price table;
`cost` turns counts, prices and a throughput into the estimate.
"""
