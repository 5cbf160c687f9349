using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Hull.Config.Toml;

/// <summary>Validates and converts TOML integer and float literals (the token is already isolated).</summary>
internal static class TomlNumberParser
{
    /// <summary>Parses <paramref name="s"/> into a <see cref="long"/> or a <see cref="double"/>.</summary>
    public static bool TryParse(string s, [NotNullWhen(true)] out object? value, [NotNullWhen(false)] out string? error)
    {
        value = null;
        switch (s)
        {
            case "inf" or "+inf":
                value = double.PositiveInfinity;
                error = null;
                return true;
            case "-inf":
                value = double.NegativeInfinity;
                error = null;
                return true;
            case "nan" or "+nan" or "-nan":
                value = double.NaN;
                error = null;
                return true;
        }

        if (s.Length >= 2 && s[0] == '0' && s[1] is 'x' or 'o' or 'b')
        {
            return TryParseRadix(s, out value, out error);
        }

        return TryParseDecimal(s, out value, out error);
    }

    private static bool TryParseDecimal(string s, [NotNullWhen(true)] out object? value, [NotNullWhen(false)] out string? error)
    {
        value = null;
        int i = 0;
        bool negative = false;
        if (s[0] is '+' or '-')
        {
            negative = s[0] == '-';
            i++;
        }

        int intStart = i;
        i = ScanDigits(s, i, IsDecimalDigit);
        if (i == intStart)
        {
            error = $"invalid value '{s}'";
            return false;
        }

        if (!CheckUnderscores(s, intStart, i, IsDecimalDigit, out error))
        {
            return false;
        }

        // A leading zero is only allowed as the whole integer part ("0", "0.5", "0e1").
        if (s[intStart] == '0' && i - intStart > 1)
        {
            error = $"leading zeros are not allowed in '{s}'";
            return false;
        }

        int intEnd = i;
        bool isFloat = false;
        if (i < s.Length && s[i] == '.')
        {
            int fracStart = ++i;
            i = ScanDigits(s, i, IsDecimalDigit);
            if (i == fracStart)
            {
                error = $"expected digits after the decimal point in '{s}'";
                return false;
            }

            if (!CheckUnderscores(s, fracStart, i, IsDecimalDigit, out error))
            {
                return false;
            }

            isFloat = true;
        }

        if (i < s.Length && s[i] is 'e' or 'E')
        {
            i++;
            if (i < s.Length && s[i] is '+' or '-')
            {
                i++;
            }

            int expStart = i;
            i = ScanDigits(s, i, IsDecimalDigit);
            if (i == expStart)
            {
                error = $"expected digits in the exponent of '{s}'";
                return false;
            }

            if (!CheckUnderscores(s, expStart, i, IsDecimalDigit, out error))
            {
                return false;
            }

            isFloat = true;
        }

        if (i != s.Length)
        {
            error = $"invalid character '{s[i]}' in number '{s}'";
            return false;
        }

        if (isFloat)
        {
            double d = double.Parse(s.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture);
            if (double.IsInfinity(d))
            {
                error = $"float '{s}' is out of range for a 64-bit float";
                return false;
            }

            value = d;
            error = null;
            return true;
        }

        ulong magnitude = 0;
        for (int k = intStart; k < intEnd; k++)
        {
            if (s[k] == '_')
            {
                continue;
            }

            if (!TryAccumulate(ref magnitude, 10, (uint)(s[k] - '0')))
            {
                return OutOfRange(s, out error);
            }
        }

        // The negative range reaches one further than the positive one.
        if (negative ? magnitude > (ulong)long.MaxValue + 1 : magnitude > long.MaxValue)
        {
            return OutOfRange(s, out error);
        }

        value = negative ? (long)(0 - magnitude) : (long)magnitude;
        error = null;
        return true;
    }

    private static bool TryParseRadix(string s, [NotNullWhen(true)] out object? value, [NotNullWhen(false)] out string? error)
    {
        value = null;
        (uint radix, Func<char, bool> isDigit, string name) = s[1] switch
        {
            'x' => (16u, (Func<char, bool>)char.IsAsciiHexDigit, "hexadecimal"),
            'o' => (8u, c => c is >= '0' and <= '7', "octal"),
            _ => (2u, c => c is '0' or '1', "binary"),
        };

        int end = ScanDigits(s, 2, isDigit);
        if (end != s.Length)
        {
            error = $"invalid {name} digit '{s[end]}' in '{s}'";
            return false;
        }

        if (end == 2)
        {
            error = $"expected {name} digits after '{s[..2]}' in '{s}'";
            return false;
        }

        if (!CheckUnderscores(s, 2, end, isDigit, out error))
        {
            return false;
        }

        ulong magnitude = 0;
        for (int k = 2; k < end; k++)
        {
            if (s[k] != '_' && !TryAccumulate(ref magnitude, radix, DigitValue(s[k])))
            {
                return OutOfRange(s, out error);
            }
        }

        if (magnitude > long.MaxValue)
        {
            return OutOfRange(s, out error);
        }

        value = (long)magnitude;
        return true;
    }

    private static bool OutOfRange(string s, out string error)
    {
        error = $"integer '{s}' is out of range for a 64-bit signed integer";
        return false;
    }

    private static bool TryAccumulate(ref ulong value, uint radix, uint digit)
    {
        if (value > (ulong.MaxValue - digit) / radix)
        {
            return false;
        }

        value = (value * radix) + digit;
        return true;
    }

    private static int ScanDigits(string s, int i, Func<char, bool> isDigit)
    {
        while (i < s.Length && (s[i] == '_' || isDigit(s[i])))
        {
            i++;
        }

        return i;
    }

    // Underscores are only allowed between two digits.
    private static bool CheckUnderscores(string s, int start, int end, Func<char, bool> isDigit, [NotNullWhen(false)] out string? error)
    {
        for (int k = start; k < end; k++)
        {
            if (s[k] == '_' && (k == start || k == end - 1 || !isDigit(s[k - 1]) || !isDigit(s[k + 1])))
            {
                error = $"underscores in '{s}' must be surrounded by digits";
                return false;
            }
        }

        error = null;
        return true;
    }

    private static bool IsDecimalDigit(char c) => c is >= '0' and <= '9';

    private static uint DigitValue(char c) => c switch
    {
        >= '0' and <= '9' => (uint)(c - '0'),
        >= 'a' and <= 'f' => (uint)(c - 'a' + 10),
        _ => (uint)(c - 'A' + 10),
    };
}
