"""Text preprocessing shared by the text families: tokenisation and vocabularies."""
