"""From a PDF file to page documents and token chunks with page spans."""
