"""An EQL compiler: Elastic's Event Query Language, the subset detection rules use, with Elasticsearch semantics.

``grammar`` (the lark grammar) -> ``parse`` (tree to the typed AST of ``ast``, refusing every construct outside
the subset with its line and column) -> ``compile`` (AST to predicates over a flattened ECS document, with the
value semantics of ``values``). Pure code: no I/O.
"""
