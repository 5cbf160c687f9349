using System.Text;
using Hull.Core;
using Hull.Images.Reference;

namespace Hull.Images.Tests.Reference;

public sealed class DigestsTests
{
    [Theory]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true)]
    [InlineData("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", true)]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false)]
    [InlineData("sha256:e3b0", false)]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", false)]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false)]
    [InlineData("sha256:", false)]
    [InlineData(":abc", false)]
    [InlineData("", false)]
    public void IsValid_accepts_only_supported_well_formed_digests(string digest, bool valid)
    {
        Assert.Equal(valid, Digests.IsValid(digest));
    }

    [Fact]
    public void Validate_throws_InvalidArgument_naming_the_digest()
    {
        var e = Assert.Throws<HullException>(() => Digests.Validate("sha256:xyz"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("sha256:xyz", e.Message);
    }

    [Fact]
    public void Sha256_and_CreateHash_agree()
    {
        byte[] data = Encoding.UTF8.GetBytes("hello");
        string digest = Digests.Sha256(data);
        Assert.Equal("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", digest);
        using var hash = Digests.CreateHash(digest);
        hash.AppendData(data);
        Assert.Equal(digest, Digests.Format(Digests.Algorithm(digest), hash.GetHashAndReset()));
    }
}
