def model(dbt, session):
    """Predictions of every declared target (meta.rfm.targets) for its query anchors.

    Streams rfm_cells through the ONNX net (rfm_runtime) and returns a RecordBatchReader, so
    dbt-duckdb writes the table without holding it in memory. See docs/scoring.md.
    """
    from dbt_rfm.scoring import ScoringInputs, predictions

    inputs = ScoringInputs(
        targets=dbt.ref("rfm_targets"),
        anchors=dbt.ref("rfm_anchors"),
        labels=dbt.ref("rfm_labels"),
        cells=dbt.ref("rfm_cells"),
        item_history=dbt.ref("rfm_item_history"),
        target_history=dbt.ref("rfm_target_history"),
        sibling_history=dbt.ref("rfm_sibling_history"),
        graph_spec=dbt.ref("rfm_graph_spec"),
    )
    return predictions(session, inputs, settings=dbt.config.meta_get("rfm", {}))
