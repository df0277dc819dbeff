// The Java SDK (io.milvus:milvus-sdk-java, MilvusClientV2) against `shoal run`, through its own
// API: a database, a collection with a schema and two vector fields, indexes, load, insert,
// search with a filter, query, get, delete, upsert, hybrid search, both iterators, partitions
// and aliases. Each step checks what a user would notice: counts, ids, ordered distances,
// filters honoured.
// Usage: SHOAL_ADDRESS=127.0.0.1:19530 java -cp "$(cat cp.txt)" Scenario.java   (prints "scenario ok")

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import io.milvus.orm.iterator.QueryIterator;
import io.milvus.orm.iterator.SearchIteratorV2;
import io.milvus.response.QueryResultsWrapper;
import io.milvus.v2.client.ConnectConfig;
import io.milvus.v2.client.MilvusClientV2;
import io.milvus.v2.common.DataType;
import io.milvus.v2.common.IndexParam;
import io.milvus.v2.service.collection.request.AddFieldReq;
import io.milvus.v2.service.collection.request.CreateCollectionReq;
import io.milvus.v2.service.collection.request.DescribeCollectionReq;
import io.milvus.v2.service.collection.request.DropCollectionReq;
import io.milvus.v2.service.collection.request.LoadCollectionReq;
import io.milvus.v2.service.collection.request.ReleaseCollectionReq;
import io.milvus.v2.service.database.request.CreateDatabaseReq;
import io.milvus.v2.service.database.request.DropDatabaseReq;
import io.milvus.v2.service.index.request.CreateIndexReq;
import io.milvus.v2.service.index.request.ListIndexesReq;
import io.milvus.v2.service.partition.request.CreatePartitionReq;
import io.milvus.v2.service.partition.request.DropPartitionReq;
import io.milvus.v2.service.partition.request.ListPartitionsReq;
import io.milvus.v2.service.utility.request.CreateAliasReq;
import io.milvus.v2.service.utility.request.DescribeAliasReq;
import io.milvus.v2.service.utility.request.DropAliasReq;
import io.milvus.v2.service.vector.request.AnnSearchReq;
import io.milvus.v2.service.vector.request.DeleteReq;
import io.milvus.v2.service.vector.request.GetReq;
import io.milvus.v2.service.vector.request.HybridSearchReq;
import io.milvus.v2.service.vector.request.InsertReq;
import io.milvus.v2.service.vector.request.QueryIteratorReq;
import io.milvus.v2.service.vector.request.QueryReq;
import io.milvus.v2.service.vector.request.SearchIteratorReqV2;
import io.milvus.v2.service.vector.request.SearchReq;
import io.milvus.v2.service.vector.request.UpsertReq;
import io.milvus.v2.service.vector.request.data.BaseVector;
import io.milvus.v2.service.vector.request.data.FloatVec;
import io.milvus.v2.service.vector.request.ranker.RRFRanker;
import io.milvus.v2.service.vector.response.QueryResp;
import io.milvus.v2.service.vector.response.SearchResp;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

public class Scenario {
    static final int DIM = 8;
    static final int ROWS = 200;
    static final String NAME = "films";
    static final Gson GSON = new Gson();

    static float[] vec(int i, double salt) {
        float[] v = new float[DIM];
        for (int k = 0; k < DIM; k++) {
            v[k] = (float) Math.sin(i * 7.1 + k * 1.3 + salt);
        }
        return v;
    }

    static List<BaseVector> one(float[] v) {
        return List.of(new FloatVec(v));
    }

    static JsonObject row(long id, long year, String title) {
        JsonObject r = new JsonObject();
        r.addProperty("id", id);
        r.addProperty("year", year);
        r.addProperty("title", title);
        r.add("v", GSON.toJsonTree(vec((int) id, 0)));
        r.add("w", GSON.toJsonTree(vec((int) id, 1)));
        return r;
    }

    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    static List<Long> ids(List<SearchResp.SearchResult> hits) {
        List<Long> out = new ArrayList<>();
        for (SearchResp.SearchResult h : hits) {
            out.add(((Number) h.getId()).longValue());
        }
        return out;
    }

    static SearchReq.SearchReqBuilder search(String collection, float[] v, int limit) {
        return SearchReq.builder().collectionName(collection).data(one(v)).annsField("v").limit(limit);
    }

    public static void main(String[] args) {
        String uri = "http://" + System.getenv("SHOAL_ADDRESS");
        String db = "java_" + System.nanoTime();
        MilvusClientV2 admin = new MilvusClientV2(ConnectConfig.builder().uri(uri).connectTimeoutMs(60_000).build());
        admin.createDatabase(CreateDatabaseReq.builder().databaseName(db).build());
        check(admin.listDatabases().getDatabaseNames().contains(db), "database listed");

        MilvusClientV2 c = new MilvusClientV2(ConnectConfig.builder().uri(uri).dbName(db).connectTimeoutMs(60_000).build());
        CreateCollectionReq.CollectionSchema schema = CreateCollectionReq.CollectionSchema.builder().build();
        schema.addField(AddFieldReq.builder().fieldName("id").dataType(DataType.Int64).isPrimaryKey(true).build());
        schema.addField(AddFieldReq.builder().fieldName("year").dataType(DataType.Int64).build());
        schema.addField(AddFieldReq.builder().fieldName("title").dataType(DataType.VarChar).maxLength(64).build());
        schema.addField(AddFieldReq.builder().fieldName("v").dataType(DataType.FloatVector).dimension(DIM).build());
        schema.addField(AddFieldReq.builder().fieldName("w").dataType(DataType.FloatVector).dimension(DIM).build());
        c.createCollection(CreateCollectionReq.builder().collectionName(NAME).collectionSchema(schema).build());
        int fields = c.describeCollection(DescribeCollectionReq.builder().collectionName(NAME).build())
                .getCollectionSchema().getFieldSchemaList().size();
        check(fields == 5, "described " + fields + " fields, want 5");

        c.createIndex(CreateIndexReq.builder().collectionName(NAME).indexParams(List.of(
                IndexParam.builder().fieldName("v").indexType(IndexParam.IndexType.HNSW)
                        .metricType(IndexParam.MetricType.L2).extraParams(Map.of("M", 8, "efConstruction", 64)).build(),
                IndexParam.builder().fieldName("w").indexType(IndexParam.IndexType.FLAT)
                        .metricType(IndexParam.MetricType.IP).build())).build());
        List<String> indexes = c.listIndexes(ListIndexesReq.builder().collectionName(NAME).build());
        check(indexes.size() == 2, "indexes " + indexes);

        c.createPartition(CreatePartitionReq.builder().collectionName(NAME).partitionName("old").build());
        List<String> parts = c.listPartitions(ListPartitionsReq.builder().collectionName(NAME).build());
        check(parts.contains("old") && parts.contains("_default"), "partitions " + parts);
        c.loadCollection(LoadCollectionReq.builder().collectionName(NAME).build());

        List<JsonObject> rows = new ArrayList<>();
        for (int i = 0; i < ROWS; i++) {
            rows.add(row(i, 1950 + i % 70, "film " + i));
        }
        long inserted = c.insert(InsertReq.builder().collectionName(NAME).data(rows).build()).getInsertCnt();
        check(inserted == ROWS, "inserted " + inserted);
        c.insert(InsertReq.builder().collectionName(NAME).partitionName("old")
                .data(List.of(row(1000, 1920, "silent"))).build());

        // The nearest neighbour of a stored vector is itself, at distance 0, then distances grow.
        List<SearchResp.SearchResult> found = c.search(search(NAME, vec(7, 0), 5)
                .outputFields(List.of("title")).build()).getSearchResults().get(0);
        check(found.size() == 5, "search hits " + found.size());
        check(ids(found).get(0) == 7 && found.get(0).getScore() < 1e-4, "nearest " + found.get(0));
        check("film 7".equals(found.get(0).getEntity().get("title")), "title " + found.get(0).getEntity());
        for (int i = 1; i < found.size(); i++) {
            check(found.get(i).getScore() >= found.get(i - 1).getScore(), "L2 distances ascend: " + found);
        }

        // A filter keeps out what it excludes, the query's own row included.
        List<SearchResp.SearchResult> filtered = c.search(search(NAME, vec(7, 0), 10).filter("year >= 2000")
                .outputFields(List.of("year")).build()).getSearchResults().get(0);
        check(filtered.size() == 10, "filtered hits " + filtered.size());
        for (SearchResp.SearchResult h : filtered) {
            check(((Number) h.getEntity().get("year")).longValue() >= 2000, "filter honoured: " + h);
        }
        check(!ids(filtered).contains(7L), "row 7 (year 1957) excluded");

        List<SearchResp.SearchResult> inOld = c.search(search(NAME, vec(7, 0), 3)
                .partitionNames(List.of("old")).build()).getSearchResults().get(0);
        check(ids(inOld).equals(List.of(1000L)), "partition search " + ids(inOld));

        QueryResp q = c.query(QueryReq.builder().collectionName(NAME).filter("id < 5")
                .outputFields(List.of("title")).build());
        check(q.getQueryResults().size() == 5, "query rows " + q.getQueryResults().size());
        Set<Object> titles = new HashSet<>();
        c.get(GetReq.builder().collectionName(NAME).ids(List.of(3L, 4L)).outputFields(List.of("title")).build())
                .getGetResults().forEach(r -> titles.add(r.getEntity().get("title")));
        check(titles.equals(Set.of("film 3", "film 4")), "get titles " + titles);

        long deleted = c.delete(DeleteReq.builder().collectionName(NAME).filter("id in [0, 1]").build()).getDeleteCnt();
        check(deleted == 2, "deleted " + deleted);
        long upserted = c.upsert(UpsertReq.builder().collectionName(NAME).data(List.of(row(2, 2024, "remade"))).build())
                .getUpsertCnt();
        check(upserted == 1, "upserted " + upserted);
        List<QueryResp.QueryResult> after = c.query(QueryReq.builder().collectionName(NAME).filter("id <= 2")
                .outputFields(List.of("title")).build()).getQueryResults();
        check(after.size() == 1 && "remade".equals(after.get(0).getEntity().get("title")), "rows id <= 2: " + after);
        Object count = c.query(QueryReq.builder().collectionName(NAME).outputFields(List.of("count(*)")).build())
                .getQueryResults().get(0).getEntity().get("count(*)");
        check(((Number) count).longValue() == ROWS + 1 - 2, "count(*) " + count);

        List<SearchResp.SearchResult> hybrid = c.hybridSearch(HybridSearchReq.builder().collectionName(NAME)
                .searchRequests(List.of(
                        AnnSearchReq.builder().vectorFieldName("v").vectors(one(vec(9, 0))).limit(10).build(),
                        AnnSearchReq.builder().vectorFieldName("w").vectors(one(vec(9, 1))).limit(10).build()))
                .ranker(new RRFRanker(60)).limit(3).outFields(List.of("title")).build())
                .getSearchResults().get(0);
        check(hybrid.size() == 3 && ids(hybrid).get(0) == 9, "hybrid " + ids(hybrid));

        Set<Long> seen = new HashSet<>();
        QueryIterator qi = c.queryIterator(QueryIteratorReq.builder().collectionName(NAME).expr("id >= 0")
                .outputFields(List.of("id")).batchSize(40).build());
        for (List<QueryResultsWrapper.RowRecord> batch = qi.next(); !batch.isEmpty(); batch = qi.next()) {
            check(batch.size() <= 40, "query iterator batch of " + batch.size());
            for (QueryResultsWrapper.RowRecord r : batch) {
                check(seen.add(((Number) r.get("id")).longValue()), "query iterator id twice: " + r);
            }
        }
        qi.close();
        check(seen.size() == ROWS - 1, "query iterator saw " + seen.size());

        Set<Long> hits = new HashSet<>();
        float last = -1;
        SearchIteratorV2 si = c.searchIteratorV2(SearchIteratorReqV2.builder().collectionName(NAME)
                .vectorFieldName("v").vectors(one(vec(5, 0))).batchSize(30).limit(90)
                .metricType(IndexParam.MetricType.L2).build());
        for (List<SearchResp.SearchResult> batch = si.next(); !batch.isEmpty(); batch = si.next()) {
            for (SearchResp.SearchResult h : batch) {
                check(hits.add(((Number) h.getId()).longValue()), "search iterator id twice: " + h);
                check(h.getScore() >= last, "search iterator distance " + h.getScore() + " after " + last);
                last = h.getScore();
            }
        }
        si.close();
        check(hits.size() == 90, "search iterator hits " + hits.size());

        c.createAlias(CreateAliasReq.builder().collectionName(NAME).alias("films_now").build());
        String target = c.describeAlias(DescribeAliasReq.builder().alias("films_now").build()).getCollectionName();
        check(NAME.equals(target), "alias points at " + target);
        List<SearchResp.SearchResult> viaAlias = c.search(search("films_now", vec(7, 0), 1).build())
                .getSearchResults().get(0);
        check(ids(viaAlias).equals(List.of(7L)), "alias search " + ids(viaAlias));
        c.dropAlias(DropAliasReq.builder().alias("films_now").build());

        c.releaseCollection(ReleaseCollectionReq.builder().collectionName(NAME).build());
        c.dropPartition(DropPartitionReq.builder().collectionName(NAME).partitionName("old").build());
        c.dropCollection(DropCollectionReq.builder().collectionName(NAME).build());
        admin.dropDatabase(DropDatabaseReq.builder().databaseName(db).build());
        check(!admin.listDatabases().getDatabaseNames().contains(db), "database dropped");
        c.close();
        admin.close();
        System.out.println("scenario ok");
    }
}
