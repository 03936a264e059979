def model(dbt, session):
    """Anchor embeddings (FLOAT[d]) of every target's query anchors, streamed like predictions."""
    from dbt_rfm.scoring import ScoringInputs, embeddings

    inputs = ScoringInputs(
        targets=dbt.ref("rfm_targets"),
        anchors=dbt.ref("rfm_anchors"),
        labels=dbt.ref("rfm_labels"),
        cells=dbt.ref("rfm_cells"),
    )
    return embeddings(session, inputs, settings=dbt.config.meta_get("rfm", {}))
