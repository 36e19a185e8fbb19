-- A guard for statements sent before the answers they depend on have come back (issue 21: a recording or a start in
-- one round trip, not two). The client guesses what its reads would return (from what it already knows), sends the
-- writes that follow from the guess in the same round trip, and puts `atelier_expect(<the guess holds>, '<what>')`
-- ahead of them. A wrong guess raises SQLSTATE AT001, which aborts the transaction, so none of the writes is kept,
-- and the client runs its ordinary path (server/db/guess-guard.ts). Null counts as false: a row the guess expected and
-- the read did not find is a wrong guess too.
CREATE OR REPLACE FUNCTION atelier_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
begin
  if ok is not true then
    raise exception 'atelier: the guess about % did not hold', what using errcode = 'AT001';
  end if;
  return true;
end
$$;
