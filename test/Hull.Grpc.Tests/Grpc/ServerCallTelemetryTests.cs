using Hull.Api.Cri;
using Hull.Grpc.Server;
using Xunit;

namespace Hull.Grpc.Tests.Grpc;

public sealed class ServerCallTelemetryTests
{
    [Fact]
    public async Task Servers_that_serve_the_same_method_share_its_calls_in_flight_row()
    {
        await using var first = new GrpcServer();
        RuntimeService.BindService(first, new TestRuntimeService());
        int before = VersionRows();
        await using var second = new GrpcServer();
        RuntimeService.BindService(second, new TestRuntimeService());

        Assert.Equal(1, before);
        Assert.Equal(1, VersionRows()); // one row per method, however many servers serve it
    }

    private static int VersionRows()
    {
        int rows = 0;
        foreach (var measurement in ServerCallTelemetry.InFlightByMethod())
            foreach (var tag in measurement.Tags)
                if (tag.Key == "method" && (string?)tag.Value == "Version") rows++;
        return rows;
    }
}
