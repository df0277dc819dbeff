"""Full-text search: analyzers (text → tokens) and BM25 (term vectors, statistics, scoring).

Imports only `shoal.errors`, `shoal.schema` and numpy (plus snowballstemmer for stemmers).
"""
