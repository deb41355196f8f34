{{ joined_to_base(
    ref('stg_retrain__items'),
    source('published', 'stabilized_item_embeddings'),
    'item_embeddings',
    'items'
) }}
