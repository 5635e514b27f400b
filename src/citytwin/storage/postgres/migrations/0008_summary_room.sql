-- Every batch of Observations updates the summary columns of its Datastreams and
-- MultiDatastreams (counts, times, the latest Observation). None of those columns is
-- indexed, so PostgreSQL can write the new row version beside the old one on the same
-- page and leave the six indexes alone (a heap-only tuple update), but only where the
-- page has room; at the default fillfactor of 100 the pages are full and nearly every
-- summary update rewrote all index entries of its row. Half of each page is now kept
-- free for them. Pages written before this keep their layout until their rows move.
ALTER TABLE datastreams SET (fillfactor = 50);
ALTER TABLE multi_datastreams SET (fillfactor = 50);
