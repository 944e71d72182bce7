"""The theme engine: themes and tags, the classifier, sentiment, learning, discovery, taxonomy."""
