{{ staged_embeddings(source('retrain_items', 'item_embeddings'), 'item_embeddings') }}
