"""vprim's public contracts, in one package (docs/CONTRACTS.md describes it).

- ``schemas``: every table's Arrow schema and the schema version written into its metadata;
- ``reasons``: the ledger's reason codes, with their stage and meaning (docs/REASONS.md);
- ``layout``: every path under the storage root, defined once;
- ``hashing``: the one stable hash behind every key a contract names;
- ``digest``: order-free row digests of a build's tables, to prove two builds equal.

Every stage imports its contracts from here; nothing here imports a stage.
"""
