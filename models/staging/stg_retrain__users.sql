{{ staged_embeddings(source('retrain_users', 'user_embeddings'), 'user_embeddings') }}
