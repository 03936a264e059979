{#-
  Lift one YAML target (config.meta.rfm.targets[i] on model `entity`) to a normalised dict:
  defaults filled in (kind, task, column '*', start 0, unit days, top_k 10), fn upper-cased,
  and the link to the entity resolved (`link_columns`). Checks the common mistakes with clear
  compiler errors; dbt_rfm.pql.validate (Python) is the full validation.
-#}
{% macro _rfm_normalize_target(raw, entity, g) %}
  {%- set name = raw.get('name', '?') -%}
  {%- set where = "target '" ~ name ~ "' on model '" ~ entity ~ "'" -%}
  {%- do dbt_rfm._rfm_check_keys(raw, ['name', 'entity', 'kind', 'task', 'aggregate', 'static',
      'cast', 'entity_filter', 'top_k', 'anchors', 'history', 'description'], where) -%}
  {%- if modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', name | string) is none -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': name must be an identifier (letters, digits, _)') }}
  {%- endif -%}
  {%- if entity not in g.tables -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ entity ~ "' is not in the rfm graph (declare its primary key)") }}
  {%- endif -%}
  {%- if (raw.get('aggregate') is none) == (raw.get('static') is none) -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": give exactly one of 'aggregate' or 'static'") }}
  {%- endif -%}
  {%- set t = {'name': name, 'entity': entity, 'entity_key': g.tables[entity].primary_key,
               'entity_time': g.tables[entity].time_column, 'cast': raw.get('cast'),
               'anchors': raw.get('anchors') or {}, 'static': raw.get('static'),
               'entity_filter': none, 'aggregate': none, 'top_k': raw.get('top_k')} -%}
  {%- set task = raw.get('task') -%}
  {%- if raw.get('aggregate') is not none -%}
    {%- set agg = dbt_rfm._rfm_normalize_aggregate(raw['aggregate'], entity, g, where, true) -%}
    {%- do t.update({'kind': 'aggregate', 'aggregate': agg}) -%}
    {%- if task is none -%}
      {%- if raw.get('cast') is not none or agg.fn == 'EXISTS' -%}{%- set task = 'binary' -%}
      {%- elif agg.fn == 'LIST_DISTINCT' -%}{%- set task = 'ranking' -%}
      {%- elif agg.fn in ('COUNT', 'SUM', 'AVG', 'COUNT_DISTINCT') -%}{%- set task = 'regression' -%}
      {%- endif -%}
    {%- endif -%}
    {%- if raw.get('history') is not none -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': history applies to static targets (aggregate targets read their history over their label window)') }}
    {%- endif -%}
  {%- else -%}
    {#- the sibling history's windows (decision 0008); twin: dbt_rfm.pql.ir.History -#}
    {%- set history = raw.get('history') or {} -%}
    {%- do dbt_rfm._rfm_check_keys(history, ['windows', 'unit'], where ~ ' history') -%}
    {%- set windows = history.get('windows', [1, 7, 28]) -%}
    {%- if windows is string or windows is not iterable or windows | length == 0 or windows | reject('integer') | list or windows | min <= 0 -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': history.windows must be a non-empty list of positive whole numbers, found ' ~ windows) }}
    {%- endif -%}
    {%- set unit = history.get('unit', 'days') | lower -%}
    {%- if unit not in ('seconds', 'minutes', 'hours', 'days', 'weeks', 'months') -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": unknown history.unit '" ~ unit ~ "'; expected one of seconds, minutes, hours, days, weeks, months") }}
    {%- endif -%}
    {%- do t.update({'kind': 'static', 'history': {'windows': windows | unique | sort, 'unit': unit}}) -%}
    {%- set cols = g.tables[entity].columns | map(attribute='name') | list -%}
    {%- if cols and raw['static'] not in cols -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ entity ~ "' has no column '" ~ raw['static'] ~ "'; columns: " ~ cols | join(', ')) }}
    {%- endif -%}
    {#- a boolean column without a cast is its own label (twin: dbt_rfm.pql.target.BOOLEAN_CAST) -#}
    {%- set stypes = g.tables[entity].columns | selectattr('name', 'equalto', raw['static']) | map(attribute='stype') | list -%}
    {%- if raw.get('cast') is none and task in (none, 'binary') and stypes == ['boolean'] -%}
      {%- do t.update({'cast': {'op': '=', 'value': true}}) -%}
    {%- endif -%}
    {%- if t.cast is not none and task is none -%}{%- set task = 'binary' -%}{%- endif -%}
  {%- endif -%}
  {%- if task not in ('binary', 'regression', 'multiclass', 'ranking') -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": cannot infer the task (found '" ~ task ~ "'); set task: binary, regression, multiclass or ranking") }}
  {%- endif -%}
  {%- if task == 'binary' and t.kind == 'static' and t.cast is none -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": a binary static target needs a cast, e.g. cast: {op: '=', value: true}") }}
  {%- endif -%}
  {%- do t.update({'task': task}) -%}
  {%- if task == 'ranking' and t.top_k is none -%}{%- do t.update({'top_k': 10}) -%}{%- endif -%}
  {%- set ef = raw.get('entity_filter') -%}
  {%- if ef is not none -%}
    {%- do dbt_rfm._rfm_check_keys(ef, ['aggregate', 'cast', 'where'], where ~ ' entity_filter') -%}
    {%- set ef_agg = none -%}
    {%- if ef.get('aggregate') is not none -%}
      {%- set ef_agg = dbt_rfm._rfm_normalize_aggregate(ef['aggregate'], entity, g, where ~ ' entity_filter', false) -%}
    {%- endif -%}
    {%- if ef_agg is not none and t.kind == 'static' -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': static targets take entity_filter.where, not an aggregate (v1)') }}
    {%- endif -%}
    {%- do t.update({'entity_filter': {'aggregate': ef_agg, 'cast': ef.get('cast'), 'where': ef.get('where')}}) -%}
  {%- endif -%}
  {%- do dbt_rfm._rfm_check_keys(t.anchors, ['spine', 'split', 'margin', 'margin_unit', 'max_context'], where ~ ' anchors') -%}
  {%- do dbt_rfm._rfm_check_keys(t.anchors.get('spine') or {}, ['start', 'end', 'step', 'unit'], where ~ ' anchors.spine') -%}
  {{ return(t) }}
{% endmacro %}

{#- Normalise an aggregate; `future` is true for targets, false for entity filters. -#}
{% macro _rfm_normalize_aggregate(raw, entity, g, where, future) %}
  {%- do dbt_rfm._rfm_check_keys(raw, ['fn', 'table', 'column', 'start', 'end', 'unit', 'where', 'link', 'via'], where ~ ' aggregate') -%}
  {%- set fns = ['COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'EXISTS', 'COUNT_DISTINCT', 'FIRST', 'LAST', 'LIST_DISTINCT'] -%}
  {%- set fn = raw.get('fn', '') | upper -%}
  {%- if fn not in fns -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": unknown aggregate '" ~ raw.get('fn') ~ "'; expected one of " ~ fns | join(', ')) }}
  {%- endif -%}
  {%- set table = raw.get('table') -%}
  {%- if table not in g.tables -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": no model '" ~ table ~ "' in the rfm graph; graph models: " ~ g.tables.keys() | sort | join(', ')) }}
  {%- endif -%}
  {%- set child = g.tables[table] -%}
  {%- set column = raw.get('column', '*') | string -%}
  {%- set cols = child.columns | map(attribute='name') | list -%}
  {%- if column != '*' and cols and column not in cols -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ table ~ "' has no column '" ~ column ~ "'; columns: " ~ cols | join(', ')) }}
  {%- endif -%}
  {%- if child.time_column is none -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ table ~ "' has no time column (meta.rfm.time_column); a temporal target needs one") }}
  {%- endif -%}
  {%- set start = raw.get('start', 0) -%}
  {%- if start is string and start | upper in ('-INF', '-INFINITY') -%}{%- set start = none -%}{%- endif -%}
  {%- set end = raw.get('end') -%}
  {%- if end is none or (start is not none and end <= start) -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': window end (' ~ end ~ ') must be after window start (' ~ start ~ ')') }}
  {%- endif -%}
  {%- if (future and (start is none or start < 0)) or (not future and end > 0) -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': target windows look forward (start >= 0), entity filter windows back (end <= 0)') }}
  {%- endif -%}
  {%- set path = dbt_rfm._rfm_path_to_entity(table, entity, raw.get('link'), raw.get('via'), g, where) -%}
  {%- set via = none -%}
  {%- if path | length == 2 -%}
    {%- set mid = g.tables[path[0].parent] -%}
    {%- set via = {'table': mid.name, 'relation': mid.relation,
                   'child_columns': path[0].child_columns, 'parent_columns': path[0].parent_columns,
                   'key_columns': path[1].child_columns} -%}
  {%- endif -%}
  {%- if fn == 'LIST_DISTINCT' -%}
    {%- set link_cols = [] -%}
    {%- for lk in g.links if lk.child == table and lk.child_columns == [column] -%}{%- do link_cols.append(lk) -%}{%- endfor -%}
    {%- if not link_cols -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": LIST_DISTINCT needs a link column (a foreign key of '" ~ table ~ "'), found '" ~ column ~ "'") }}
    {%- endif -%}
  {%- endif -%}
  {{ return({'fn': fn, 'table': table, 'column': column, 'start': start, 'end': end,
             'unit': (raw.get('unit', 'days') | lower), 'where': raw.get('where'),
             'link_columns': path[0].child_columns, 'via': via, 'relation': child.relation,
             'time_column': child.time_column}) }}
{% endmacro %}

{#-
  Links from `table` to `entity`: [link] for a direct child, [table->via, via->entity] for a
  grandchild. A direct link wins unless `via` is given; a two-hop path must be unique.
  Python twin: dbt_rfm.pql.paths.path_to_entity.
-#}
{% macro _rfm_path_to_entity(table, entity, link, via, g, where) %}
  {%- set link = none if link is none else ([link] if link is string else link) -%}
  {%- set first = [] -%}
  {%- for lk in g.links if lk.child == table and (link is none or lk.child_columns == link) -%}
    {%- do first.append(lk) -%}
  {%- endfor -%}
  {%- if via is none -%}
    {%- set direct = first | selectattr('parent', 'equalto', entity) | list -%}
    {%- if direct | length == 1 -%}{{ return(direct) }}{%- endif -%}
    {%- if direct | length > 1 -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ table ~ "' links to '" ~ entity ~ "' in several ways (" ~ direct | map(attribute='name') | join(', ') ~ '); pick one with aggregate.link') }}
    {%- endif -%}
  {%- elif via not in g.tables -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": aggregate.via names no model '" ~ via ~ "'; graph models: " ~ g.tables.keys() | sort | join(', ')) }}
  {%- endif -%}
  {%- set paths = [] -%}
  {%- for lk1 in first if lk1.parent not in (entity, table) and (via is none or lk1.parent == via) -%}
    {%- for lk2 in g.links if lk2.child == lk1.parent and lk2.parent == entity -%}
      {%- do paths.append([lk1, lk2]) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- if paths | length == 0 -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ table ~ "' has no link to the entity '" ~ entity ~ "' (directly or through one model; see aggregate.link / aggregate.via)") }}
  {%- elif paths | length > 1 -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": model '" ~ table ~ "' reaches '" ~ entity ~ "' in several ways; pick one with aggregate.via (and aggregate.link)") }}
  {%- endif -%}
  {{ return(paths[0]) }}
{% endmacro %}

{#- Reject keys outside `allowed`, suggesting one that shares its first letters. -#}
{% macro _rfm_check_keys(raw, allowed, where) %}
  {%- if raw is not mapping -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': expected a mapping, found ' ~ raw) }}
  {%- endif -%}
  {%- for key in raw if key not in allowed -%}
    {%- set close = [] -%}
    {%- for a in allowed if a[:3] == (key | string)[:3] or (key | string) in a -%}{%- do close.append(a) -%}{%- endfor -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": unknown key '" ~ key ~ "'"
        ~ (" (did you mean '" ~ close[0] ~ "'?)" if close else '') ~ '; allowed keys: ' ~ allowed | join(', ')) }}
  {%- endfor -%}
{% endmacro %}
