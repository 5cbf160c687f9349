using Hull.Images.Unpack;

namespace Hull.Images.Tests.Unpack;

public sealed class ChainIdsTests
{
    private static readonly string A = "sha256:" + new string('a', 64);
    private static readonly string B = "sha256:" + new string('b', 64);
    private static readonly string C = "sha256:" + new string('c', 64);

    [Fact]
    public void Chain_id_of_the_first_layer_is_its_diff_id_and_then_hashes_parent_space_diff_id()
    {
        // Expected values from: printf '%s' "$A $B" | sha256sum
        Assert.Equal(
            [A, "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c",
                "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588"],
            ChainIds.Compute([A, B, C]));
        Assert.Equal(A, ChainIds.Next(null, A));
    }
}
