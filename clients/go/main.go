// The Go SDK (github.com/milvus-io/milvus/client/v2) against `shoal run`, through its own API:
// a database, a collection with a schema and two vector fields, indexes, load, insert, search
// with a filter, query, get, delete, upsert, hybrid search, both iterators, partitions and
// aliases. Each step checks what a user would notice: counts, ids, ordered distances, filters.
// Usage: SHOAL_ADDRESS=127.0.0.1:19530 go run .   (prints "scenario ok" and exits 0)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

const (
	dim  = 8
	rows = 200
	coll = "films"
)

func vec(i int, salt float64) []float32 {
	v := make([]float32, dim)
	for k := range v {
		v[k] = float32(math.Sin(float64(i)*7.1 + float64(k)*1.3 + salt))
	}
	return v
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL "+format+"\n", args...)
	os.Exit(1)
}

func check(cond bool, format string, args ...any) {
	if !cond {
		fail(format, args...)
	}
}

func ints(c column.Column) []int64 {
	out := make([]int64, c.Len())
	for i := range out {
		v, err := c.GetAsInt64(i)
		must(err, "int column")
		out[i] = v
	}
	return out
}

func strs(c column.Column) []string {
	out := make([]string, c.Len())
	for i := range out {
		v, err := c.GetAsString(i)
		must(err, "string column")
		out[i] = v
	}
	return out
}

func ascending(scores []float32) bool {
	return sort.SliceIsSorted(scores, func(a, b int) bool { return scores[a] < scores[b] })
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr := os.Getenv("SHOAL_ADDRESS")
	db := fmt.Sprintf("go_%d", time.Now().UnixNano())

	// The SDK retries a refused connection; a server that is not there fails here, not at the deadline.
	dial, dialCancel := context.WithTimeout(ctx, 60*time.Second)
	defer dialCancel()
	admin, err := milvusclient.New(dial, &milvusclient.ClientConfig{Address: addr})
	must(err, "connect")
	defer admin.Close(ctx)
	must(admin.CreateDatabase(ctx, milvusclient.NewCreateDatabaseOption(db)), "create database")
	dbs, err := admin.ListDatabase(ctx, milvusclient.NewListDatabaseOption())
	must(err, "list databases")
	check(slices.Contains(dbs, db), "database %s not listed: %v", db, dbs)

	c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr, DBName: db})
	must(err, "connect to database")
	defer c.Close(ctx)

	schema := entity.NewSchema().WithName(coll).
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("year").WithDataType(entity.FieldTypeInt64)).
		WithField(entity.NewField().WithName("title").WithDataType(entity.FieldTypeVarChar).WithMaxLength(64)).
		WithField(entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(dim)).
		WithField(entity.NewField().WithName("w").WithDataType(entity.FieldTypeFloatVector).WithDim(dim))
	must(c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(coll, schema)), "create collection")
	described, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(coll))
	must(err, "describe collection")
	check(len(described.Schema.Fields) == 5, "described %d fields, want 5", len(described.Schema.Fields))

	task, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(coll, "v", index.NewHNSWIndex(entity.L2, 8, 64)))
	must(err, "create HNSW index")
	must(task.Await(ctx), "await HNSW index")
	task, err = c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(coll, "w", index.NewFlatIndex(entity.IP)))
	must(err, "create FLAT index")
	must(task.Await(ctx), "await FLAT index")
	indexes, err := c.ListIndexes(ctx, milvusclient.NewListIndexOption(coll))
	must(err, "list indexes")
	check(len(indexes) == 2, "indexes %v, want 2", indexes)

	must(c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(coll, "old")), "create partition")
	parts, err := c.ListPartitions(ctx, milvusclient.NewListPartitionOption(coll))
	must(err, "list partitions")
	check(slices.Contains(parts, "old") && slices.Contains(parts, "_default"), "partitions %v", parts)

	load, err := c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(coll))
	must(err, "load")
	must(load.Await(ctx), "await load")

	ids, years, titles := make([]int64, rows), make([]int64, rows), make([]string, rows)
	vs, ws := make([][]float32, rows), make([][]float32, rows)
	for i := range rows {
		ids[i], years[i], titles[i] = int64(i), int64(1950+i%70), fmt.Sprintf("film %d", i)
		vs[i], ws[i] = vec(i, 0), vec(i, 1)
	}
	ins, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(coll).
		WithInt64Column("id", ids).WithInt64Column("year", years).WithVarcharColumn("title", titles).
		WithFloatVectorColumn("v", dim, vs).WithFloatVectorColumn("w", dim, ws))
	must(err, "insert")
	check(ins.InsertCount == rows, "inserted %d, want %d", ins.InsertCount, rows)
	_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(coll).WithPartition("old").
		WithInt64Column("id", []int64{1000}).WithInt64Column("year", []int64{1920}).
		WithVarcharColumn("title", []string{"silent"}).
		WithFloatVectorColumn("v", dim, [][]float32{vec(1000, 0)}).WithFloatVectorColumn("w", dim, [][]float32{vec(1000, 1)}))
	must(err, "insert into partition")

	// The nearest neighbour of a stored vector is itself, at distance 0, then distances grow.
	found, err := c.Search(ctx, milvusclient.NewSearchOption(coll, 5, []entity.Vector{entity.FloatVector(vec(7, 0))}).
		WithANNSField("v").WithOutputFields("title", "year"))
	must(err, "search")
	check(found[0].ResultCount == 5, "search returned %d hits, want 5", found[0].ResultCount)
	hitIDs := ints(found[0].IDs)
	check(hitIDs[0] == 7 && found[0].Scores[0] < 1e-4, "nearest %d at %v, want 7 at 0", hitIDs[0], found[0].Scores[0])
	check(ascending(found[0].Scores), "L2 distances not ascending: %v", found[0].Scores)
	check(strs(found[0].GetColumn("title"))[0] == "film 7", "title %v", strs(found[0].GetColumn("title")))

	// A filter keeps out what it excludes, the query's own row included.
	filtered, err := c.Search(ctx, milvusclient.NewSearchOption(coll, 10, []entity.Vector{entity.FloatVector(vec(7, 0))}).
		WithANNSField("v").WithFilter("year >= 2000").WithOutputFields("year"))
	must(err, "filtered search")
	check(filtered[0].ResultCount == 10, "filtered search returned %d hits", filtered[0].ResultCount)
	for i, y := range ints(filtered[0].GetColumn("year")) {
		check(y >= 2000, "hit %d has year %d, filter says >= 2000", ints(filtered[0].IDs)[i], y)
	}
	check(!slices.Contains(ints(filtered[0].IDs), 7), "row 7 (year 1957) passed the filter")

	inOld, err := c.Search(ctx, milvusclient.NewSearchOption(coll, 3, []entity.Vector{entity.FloatVector(vec(7, 0))}).
		WithANNSField("v").WithPartitions("old"))
	must(err, "search a partition")
	check(slices.Equal(ints(inOld[0].IDs), []int64{1000}), "partition search ids %v, want [1000]", ints(inOld[0].IDs))

	q, err := c.Query(ctx, milvusclient.NewQueryOption(coll).WithFilter("id < 5").WithOutputFields("title"))
	must(err, "query")
	check(q.ResultCount == 5, "query returned %d rows, want 5", q.ResultCount)
	got, err := c.Get(ctx, milvusclient.NewQueryOption(coll).WithIDs(column.NewColumnInt64("id", []int64{3, 4})).
		WithOutputFields("title"))
	must(err, "get")
	titlesGot := strs(got.GetColumn("title"))
	sort.Strings(titlesGot)
	check(slices.Equal(titlesGot, []string{"film 3", "film 4"}), "get titles %v", titlesGot)

	del, err := c.Delete(ctx, milvusclient.NewDeleteOption(coll).WithExpr("id in [0, 1]"))
	must(err, "delete")
	check(del.DeleteCount == 2, "deleted %d, want 2", del.DeleteCount)
	up, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(coll).
		WithInt64Column("id", []int64{2}).WithInt64Column("year", []int64{2024}).
		WithVarcharColumn("title", []string{"remade"}).
		WithFloatVectorColumn("v", dim, [][]float32{vec(2, 0)}).WithFloatVectorColumn("w", dim, [][]float32{vec(2, 1)}))
	must(err, "upsert")
	check(up.UpsertCount == 1, "upserted %d, want 1", up.UpsertCount)
	after, err := c.Query(ctx, milvusclient.NewQueryOption(coll).WithFilter("id <= 2").WithOutputFields("title"))
	must(err, "query after delete and upsert")
	check(slices.Equal(strs(after.GetColumn("title")), []string{"remade"}), "rows id <= 2: %v", strs(after.GetColumn("title")))
	count, err := c.Query(ctx, milvusclient.NewQueryOption(coll).WithOutputFields("count(*)"))
	must(err, "count")
	check(ints(count.GetColumn("count(*)"))[0] == rows+1-2, "count(*) %v, want %d", ints(count.GetColumn("count(*)")), rows-1)

	hybrid, err := c.HybridSearch(ctx, milvusclient.NewHybridSearchOption(coll, 3,
		milvusclient.NewAnnRequest("v", 10, entity.FloatVector(vec(9, 0))),
		milvusclient.NewAnnRequest("w", 10, entity.FloatVector(vec(9, 1))),
	).WithReranker(milvusclient.NewRRFReranker()).WithOutputFields("title"))
	must(err, "hybrid search")
	check(hybrid[0].ResultCount == 3 && ints(hybrid[0].IDs)[0] == 9, "hybrid ids %v, want 9 first", ints(hybrid[0].IDs))

	qit, err := c.QueryIterator(ctx, milvusclient.NewQueryIteratorOption(coll).WithBatchSize(40).WithOutputFields("id"))
	must(err, "query iterator")
	seen := map[int64]bool{}
	for {
		batch, err := qit.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		must(err, "query iterator next")
		check(batch.ResultCount <= 40, "query iterator batch of %d, asked 40", batch.ResultCount)
		for _, id := range ints(batch.GetColumn("id")) {
			check(!seen[id], "query iterator returned id %d twice", id)
			seen[id] = true
		}
	}
	check(len(seen) == rows-1, "query iterator saw %d rows, want %d", len(seen), rows-1)

	sit, err := c.SearchIterator(ctx, milvusclient.NewSearchIteratorOption(coll, entity.FloatVector(vec(5, 0))).
		WithANNSField("v").WithBatchSize(30).WithIteratorLimit(90))
	must(err, "search iterator")
	hits, last := map[int64]bool{}, float32(-1)
	for {
		batch, err := sit.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		must(err, "search iterator next")
		for i, id := range ints(batch.IDs) {
			check(!hits[id], "search iterator returned id %d twice", id)
			check(batch.Scores[i] >= last, "search iterator distance %v after %v", batch.Scores[i], last)
			hits[id], last = true, batch.Scores[i]
		}
	}
	check(len(hits) == 90, "search iterator gave %d hits, want 90", len(hits))

	must(c.CreateAlias(ctx, milvusclient.NewCreateAliasOption(coll, "films_now")), "create alias")
	alias, err := c.DescribeAlias(ctx, milvusclient.NewDescribeAliasOption("films_now"))
	must(err, "describe alias")
	check(alias.CollectionName == coll, "alias points at %q", alias.CollectionName)
	viaAlias, err := c.Search(ctx, milvusclient.NewSearchOption("films_now", 1, []entity.Vector{entity.FloatVector(vec(7, 0))}).
		WithANNSField("v"))
	must(err, "search through alias")
	check(ints(viaAlias[0].IDs)[0] == 7, "alias search ids %v", ints(viaAlias[0].IDs))
	must(c.DropAlias(ctx, milvusclient.NewDropAliasOption("films_now")), "drop alias")

	must(c.ReleaseCollection(ctx, milvusclient.NewReleaseCollectionOption(coll)), "release")
	must(c.DropPartition(ctx, milvusclient.NewDropPartitionOption(coll, "old")), "drop partition")
	must(c.DropCollection(ctx, milvusclient.NewDropCollectionOption(coll)), "drop collection")
	must(admin.DropDatabase(ctx, milvusclient.NewDropDatabaseOption(db)), "drop database")
	dbs, err = admin.ListDatabase(ctx, milvusclient.NewListDatabaseOption())
	must(err, "list databases after drop")
	check(!slices.Contains(dbs, db), "database %s still listed", db)
	fmt.Println("scenario ok")
}
