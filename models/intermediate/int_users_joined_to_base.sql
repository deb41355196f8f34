{{ joined_to_base(
    ref('stg_retrain__users'),
    source('published', 'stabilized_user_embeddings'),
    'user_embeddings',
    'users'
) }}
