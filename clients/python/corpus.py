"""The eight short documents every framework scenario stores and searches."""

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "a vector database stores embeddings for similarity search",
    "milvus and shoal speak the same protocol",
    "rainy weather in the mountains this weekend",
    "a recipe for bread with flour water salt and yeast",
    "the fox and the hound are old friends",
    "kubernetes operators reconcile custom resources",
    "search results are ranked by distance",
]
TOPICS = ["animals", "databases", "databases", "weather", "food", "animals", "ops", "databases"]
