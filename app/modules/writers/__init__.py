"""Answer writers: the embedded extractive writer and the OpenAI-compatible LLM writer."""
