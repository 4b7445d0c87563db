"""An EQL compiler: Elastic's Event Query Language, the subset detection rules use, with Elasticsearch semantics.

``grammar`` (the lark grammar, its LALR tables shipped built) -> ``parse`` (tree to the typed AST of ``ast``,
refusing every construct outside the subset with its line and column) -> ``compile`` (AST to predicates over a
flattened ECS document, with the value semantics of ``values`` and the functions of ``functions``); ``screen``
derives a query's pre-filter patterns from the AST. Pure code: no I/O but reading the package's own tables.
"""
