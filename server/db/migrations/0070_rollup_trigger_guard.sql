-- The rollups' statement-level trigger on task updates (0064) returns at once when no row the statement touched has
-- ended, before or after: most updates of tasks (the counting statement, the enqueue, the claim, a start, a heartbeat)
-- end none, and building the (empty) array of figure changes cost each of them ~0.02-0.05 ms of Postgres' time (a
-- chain edge's counting statement 0.13 -> 0.11 ms, docs/performance.md "The rollup trigger on a chain edge"). What it
-- adds for a statement that ends tasks is unchanged.
CREATE OR REPLACE FUNCTION task_figures_statement_change() RETURNS trigger LANGUAGE plpgsql AS $$
declare
  changes task_figure_change[];
begin
  if tg_op = 'UPDATE' then
    if not exists (select from n where n.finished_at is not null) and not exists (select from o where o.finished_at is not null) then
      return null;
    end if;
    changes := array(select task_figure_change(n, 1) from n where n.finished_at is not null
      union all select task_figure_change(o, -1) from o where o.finished_at is not null);
  else
    changes := array(select task_figure_change(o, -1) from o where o.finished_at is not null);
  end if;
  if cardinality(changes) > 0 then
    perform task_figures_apply(changes);
  end if;
  return null;
end
$$;
