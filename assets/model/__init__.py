"""The compact model: tokenizer, compressed-sparse-attention decoder, training and evaluation."""
